"""All-or-nothing output directories, shared by every command that writes files.

`staged_dir` hands out a staging directory beside the target and renames it into place only
when the block succeeds, so a failed run leaves nothing half-written (and an earlier run's
directory intact).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kabuto.errors import KabutoError

__all__ = ["staged_dir"]


@contextlib.contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A staging directory beside `out_dir` that replaces it when the block succeeds.

    On an error the staging directory is removed and `out_dir` is left as it was, so a run
    writes all of its files or none.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the outputs are the user's
    try:
        yield staging
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_dir(staging: Path, out_dir: Path) -> None:
    """Move the finished staging directory into place, replacing an earlier run's outputs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise KabutoError(f"{out_dir}: exists and is not a directory; choose another --out")
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out_dir, old)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
