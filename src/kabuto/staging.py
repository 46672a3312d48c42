"""All-or-nothing output directories, shared by every command that writes files.

`staged_dir` hands out a staging directory beside the target and renames it into place only
when the block succeeds, so a failed run leaves nothing half-written (and an earlier run's
directory intact).

A run replaces its output directory as a whole, so kabuto must never take a directory of the
user's for one: every output directory holds a marker file, `MARKER`, listing the files the run
wrote, and an existing directory is replaced only if it is empty or has the marker and nothing
that the marker does not list (a config or data file the user put among the outputs stops the
run). `check_out_dir` says whether a target will do before any work is spent on a run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kabuto.errors import OutputDirError

__all__ = ["MARKER", "check_out_dir", "staged_dir"]

#: The file that marks a directory as kabuto's outputs (and so safe to replace).
MARKER = ".kabuto-output"
_MARKER_TEXT = (
    "This directory holds the outputs of a kabuto run. Running kabuto again with --out naming "
    "it replaces the whole directory, unless it holds files other than these:\n"
)

#: The marker of versions before the marker listed the files (the directory's files unknown).
_OLD_MARKER_TEXT = (
    "This directory holds the outputs of a kabuto run. Running kabuto again with --out naming "
    "it replaces the whole directory.\n"
)


def check_out_dir(out_dir: str | os.PathLike[str]) -> None:
    """Raise `OutputDirError` unless a run can write its outputs to `out_dir`.

    It can if `out_dir` is missing and could be created (its nearest existing ancestor is a
    writable directory), or is an empty directory or an earlier run's output directory in a
    writable parent. Leaves nothing behind: call it before the work of a run.
    """
    out_dir = Path(out_dir).resolve()
    with _writing(out_dir):
        _check_replaceable(out_dir)
        ancestor = _nearest_existing(out_dir.parent)
        if not ancestor.is_dir():
            raise OutputDirError(
                f"{out_dir}: {ancestor} is a file, not a directory; choose another --out"
            )
        # Try it: permission bits do not tell (root, read-only or virtual file systems).
        os.rmdir(tempfile.mkdtemp(prefix=".kabuto-probe.", dir=ancestor))


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """A staging directory beside `out_dir` that replaces it when the block succeeds.

    On an error the staging directory is removed and `out_dir` is left as it was, so a run
    writes all of its files or none. The staging directory starts with the `MARKER` file.

    Raises
    ------
    OutputDirError
        If `out_dir` cannot take the outputs (see `check_out_dir`), before the block runs; if
        it changed during the block so that it no longer can; or if writing fails (an OS
        error in the block, e.g. a full disk).
    """
    out_dir = Path(out_dir).resolve()
    with _writing(out_dir):
        _check_replaceable(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with _writing(out_dir):  # e.g. a full disk: one line, and nothing half-written
            _make_public(staging)
            (staging / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
            yield staging
            written = sorted(p.name for p in staging.iterdir())
            with open(staging / MARKER, "a", encoding="utf-8") as marker:
                marker.writelines(f"{name}\n" for name in written)
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """An OS error while preparing or writing `out_dir` as a one-line error (what to do)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputDirError(
            f"{out_dir}: cannot write here ({reason}); choose another --out"
        ) from exc


def _check_replaceable(out_dir: Path) -> None:
    """Refuse an existing `out_dir` that is not a directory kabuto may replace as a whole."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputDirError(f"{out_dir}: exists and is not a directory; choose another --out")
    marker = out_dir / MARKER
    if not marker.is_file():
        if any(out_dir.iterdir()):
            raise OutputDirError(
                f"{out_dir}: exists and is not a kabuto output directory; choose another --out "
                "or remove it"
            )
        return
    text = marker.read_text(encoding="utf-8", errors="replace")
    if text == _OLD_MARKER_TEXT:
        return  # a marker of an older version, which listed nothing
    if not text.startswith(_MARKER_TEXT):
        raise OutputDirError(
            f"{out_dir}: its {MARKER} file is not one kabuto wrote, so the directory may hold "
            "files of yours, and a run replaces the whole directory; choose another --out or "
            "remove it"
        )
    listed = {MARKER, *text[len(_MARKER_TEXT) :].splitlines()}
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in listed)
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise OutputDirError(
            f"{out_dir}: holds {shown}, which kabuto did not write, and a run replaces the whole "
            "directory; move them out or choose another --out"
        )


def _nearest_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (a file, when `path` lies under one)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _make_public(staging: Path) -> None:
    """Give the staging directory the user's usual permissions (mkdtemp makes it private)."""
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)


def _replace_dir(staging: Path, out_dir: Path) -> None:
    """Move the finished staging directory into place, replacing an earlier run's outputs."""
    with _writing(out_dir):
        _check_replaceable(out_dir)  # again: the directory may have changed during the run
        if not out_dir.exists():
            os.replace(staging, out_dir)
            return
        # The earlier outputs wait in a new, uniquely named folder until the new ones are in
        # place: no file of the user's is overwritten, and a failed swap can be undone.
        holder = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        earlier = holder / out_dir.name
        os.replace(out_dir, earlier)
        try:
            os.replace(staging, out_dir)
        except BaseException:
            os.replace(earlier, out_dir)  # roll back: the earlier outputs stay where they were
            holder.rmdir()
            raise
    shutil.rmtree(holder, ignore_errors=True)
