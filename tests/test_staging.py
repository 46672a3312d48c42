"""Output directories: all or nothing, and never a directory kabuto did not write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kabuto.errors import OutputDirError
from kabuto.staging import MARKER, check_out_dir, staged_dir


def _run(out: Path, files: dict[str, str]) -> None:
    """A stand-in for a command's run: write `files` into `out` through `staged_dir`."""
    with staged_dir(out) as staging:
        for name, text in files.items():
            (staging / name).write_text(text)


def test_a_new_directory_is_created_with_the_marker(tmp_path):
    out = tmp_path / "a" / "out"
    check_out_dir(out)
    assert list(tmp_path.iterdir()) == []  # the check writes nothing
    _run(out, {"report.html": "new"})
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "report.html"]
    assert [p.name for p in out.parent.iterdir()] == ["out"]  # no staging left


def test_an_empty_directory_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    check_out_dir(out)
    _run(out, {"report.html": "new"})
    assert (out / "report.html").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_earlier_run_is_replaced_as_a_whole(tmp_path):
    out = tmp_path / "out"
    _run(out, {"report.html": "old", "trades.parquet": "old"})
    check_out_dir(out)
    _run(out, {"report.html": "new"})
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "report.html"]
    assert (out / "report.html").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_directory_of_other_files_is_refused_and_untouched(tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not a kabuto output directory"):
        check_out_dir(out)
    with pytest.raises(OutputDirError, match="not a kabuto output directory"):
        _run(out, {"report.html": "new"})
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["project"]


def test_a_directory_filled_during_the_run_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    refused = pytest.raises(OutputDirError, match="not a kabuto output directory")
    with refused, staged_dir(out) as staging:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        (staging / "report.html").write_text("new")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_user_directory_named_like_the_old_outputs_is_kept(tmp_path):
    out = tmp_path / "out"
    _run(out, {"report.html": "old"})
    kept = tmp_path / ".out.old"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    _run(out, {"report.html": "new"})
    assert (kept / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.old", "out"]


def test_a_failed_swap_puts_the_earlier_run_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(out, {"report.html": "old"})
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out and Path(src).parent == tmp_path:  # the staging directory's move
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputDirError, match=r"cannot write here \(No space left on device\)"):
        _run(out, {"report.html": "new"})
    assert (out / "report.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or hidden copy left


@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("afile", "exists and is not a directory"),
        ("afile/sub/out", "afile is a file, not a directory"),
    ],
)
def test_impossible_targets_are_refused_before_anything_is_written(tmp_path, out, needle):
    (tmp_path / "afile").write_text("not a directory")
    target = tmp_path / out
    with pytest.raises(OutputDirError, match=needle) as check:
        check_out_dir(target)
    assert str(check.value).startswith(f"{target}: ")
    with pytest.raises(OutputDirError, match="choose another --out"):
        _run(target, {"report.html": "new"})
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]
    assert (tmp_path / "afile").read_text() == "not a directory"


def test_files_the_user_put_among_the_outputs_stop_the_run(tmp_path):
    # A config or data file copied into an earlier run's directory would go with it.
    out = tmp_path / "out"
    _run(out, {"report.html": "old"})
    (out / "prices.csv").write_text("mine")
    with pytest.raises(OutputDirError, match=r"holds prices\.csv, which kabuto did not write"):
        check_out_dir(out)
    with pytest.raises(OutputDirError, match="move them out or choose another --out"):
        _run(out, {"report.html": "new"})
    assert (out / "prices.csv").read_text() == "mine"
    assert (out / "report.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (out / "prices.csv").unlink()
    _run(out, {"report.html": "new"})  # the run's own files only: replaced as before
    assert (out / "report.html").read_text() == "new"


@pytest.mark.parametrize("text", ["", "notes\n"])
def test_a_marker_kabuto_did_not_write_stops_the_run(tmp_path, text):
    # an empty or foreign marker was taken for an older version's, and the files went with it
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(text)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=f"its {MARKER} file is not one kabuto wrote"):
        _run(out, {"report.html": "new"})
    assert (out / "notes.txt").read_text() == "mine"


def test_an_older_versions_output_directory_is_still_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(
        "This directory holds the outputs of a kabuto run. Running kabuto again with --out "
        "naming it replaces the whole directory.\n"
    )
    (out / "report.html").write_text("old")
    _run(out, {"report.html": "new"})
    assert (out / "report.html").read_text() == "new"


def test_a_failed_write_is_one_error_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    _run(out, {"report.html": "old"})
    full = pytest.raises(OutputDirError, match=r"cannot write here \(No space left on device\)")
    with full, staged_dir(out) as staging:
        (staging / "report.html").write_text("new")
        raise OSError(28, "No space left on device")
    assert (out / "report.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
