"""`ccpt new` into a place that cannot hold a folder fails in one line, leaving nothing."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_ccpt


def test_a_target_under_a_file_is_one_clear_line_and_no_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine\n")
    result = run_ccpt("new", str(blocker / "demo"), "--defaults", "--no-git", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot create the project beside"), lines
    assert blocker.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
