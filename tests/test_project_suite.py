"""Each task kind's rendered project passes its own test suite, offline, on this CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.project_support import PROJECT_KINDS, new_project, run_in_project

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", PROJECT_KINDS)
def test_the_rendered_projects_own_tests_pass(tmp_path: Path, kind: str) -> None:
    project = new_project(tmp_path, "proj", kind)
    result = run_in_project(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary and "error" not in summary
