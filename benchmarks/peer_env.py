"""A peer library's own virtual environment, made on first use, for the side-by-side benchmarks.

Peers that pin old dependencies (pfhedge: numpy < 2) or are slow to import next to kabuto (PAMS)
run as subprocesses of their own environment under ``~/.cache/kabuto``. An environment counts as
made only when its marker file exists, written after the install and an import check succeed; a
failed attempt is removed, so the next run tries again instead of failing on a half-made one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def ensure_venv(
    path: Path, requirements: list[str], constraints: list[str], module: str, skip_flag: str
) -> Path | None:
    """The environment's python, made on first use; None, with a message, if it cannot be made.

    Parameters
    ----------
    path : Path
        Where the environment lives.
    requirements : list of str
        What pip installs (e.g. ``["pfhedge==0.23.0"]``).
    constraints : list of str
        pip constraints (e.g. the CPU torch pin).
    module : str
        Imported once after the install, as the check that it worked.
    skip_flag : str
        The benchmark's option that skips this peer, named in the failure message.
    """
    python = path / "bin" / "python"
    marker = path / ("installed-" + "-".join(requirements).replace("==", "-").replace(" ", ""))
    if marker.exists():
        return python
    print(f"creating {module}'s environment in {path} ({', '.join(requirements)}) ...", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(constraints) + "\n")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "-c", f.name, *requirements]
        subprocess.run(pip, check=True)
        subprocess.run([str(python), "-c", f"import {module}"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(
            f"\ncould not install {', '.join(requirements)} into {path} ({exc}); it needs the "
            f"package registry. Continuing without it; run with {skip_flag} to skip this attempt.",
            file=sys.stderr,
            flush=True,
        )
        shutil.rmtree(path, ignore_errors=True)
        return None
    finally:
        os.unlink(f.name)
    marker.touch()
    return python
