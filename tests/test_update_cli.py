"""`ccpt update` as a user runs it: plan table, --pretend, refusals, one-line errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ccpt.scaffold.project import NewRequest, create_project
from ccpt.scaffold.template import ProjectTemplate
from ccpt.specs import CrpgItem, load_spec
from tests.conftest import run_ccpt
from tests.scaffold_support import builtin_template_copy, git, git_isolated, make_project, tree_snapshot
from tests.test_update_merge import EXPECTED_PLAN, change_template, edit_project

pytestmark = pytest.mark.usefixtures(git_isolated.__name__)

# The same template change without a version bump (the --template copy renders as this ccpt's version):
# the answers file and the ADR that shows the version do not change.
SAME_VERSION_PLAN = {
    path: status.value
    for path, status in EXPECTED_PLAN.items()
    if path not in {".copier-answers.yml", "docs/adr/0001-training-stack.md"}
}


@pytest.fixture(scope="module")
def template_now(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the built-in template, frozen for this module (the tree may change meanwhile)."""
    return builtin_template_copy(tmp_path_factory.mktemp("template-now") / "project")


@pytest.fixture(scope="module")
def changed_template(template_now: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(shutil.copytree(template_now, tmp_path_factory.mktemp("template-next") / "project"))
    change_template(root)
    return root


@pytest.fixture
def project(tmp_path: Path, template_now: Path) -> Path:
    make_project(tmp_path / "demo", template=ProjectTemplate.load(template_now))
    edit_project(tmp_path / "demo")
    return tmp_path / "demo"


def table_rows(output: str) -> dict[str, str]:
    """path -> status from the plan table rich printed."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) == 3 and cells[0] and cells[1] and cells[0] != "status":
            rows[cells[1]] = cells[0]
    return rows


def test_a_fresh_project_says_it_is_up_to_date(tmp_path: Path) -> None:
    make_project(tmp_path / "demo")
    result = run_ccpt("update", "--pretend", cwd=tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout


def test_pretend_shows_the_plan_table_and_writes_nothing(project: Path, changed_template: Path) -> None:
    before = tree_snapshot(project)
    refs = git(project, "for-each-ref")
    result = run_ccpt("update", str(project), "--pretend", "--template", str(changed_template))
    assert result.returncode == 0, result.stderr
    rows = {path: status for path, status in table_rows(result.stdout).items() if not path.startswith("src/")}
    assert {
        path: status for path, status in rows.items() if not path.startswith(("tests/", "pyproject"))
    } == (SAME_VERSION_PLAN)
    assert "nothing was written" in result.stdout
    version = ProjectTemplate.load(changed_template).version  # the same as the project's
    assert f"template {version}, changed since this project's last render" in result.stdout
    assert tree_snapshot(project) == before and git(project, "for-each-ref") == refs
    assert git(project, "status", "--porcelain") == ""


def test_update_applies_the_plan_and_a_second_run_is_a_no_op(project: Path, changed_template: Path) -> None:
    result = run_ccpt("update", str(project), "--template", str(changed_template))
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["README.md"] == "conflict"
    assert "2 conflicts to resolve" in result.stdout
    # The count is of the files in the table (the answers file is named apart).
    written = [path for path, status in rows.items() if status in {"updated", "merged", "conflict", "added"}]
    removed = [path for path, status in rows.items() if status == "removed"]
    assert f"Wrote {len(written)} files, removed {len(removed)};" in result.stdout
    # New files are named in the review and staged by the commit it suggests (`commit -a` would not).
    added = [path for path, status in rows.items() if status == "added"]
    assert added == ["docs/CONTRIBUTING.md"] and "(and the new file `git status` lists)" in result.stdout
    assert "git add -A && git commit -m 'ccpt update'" in result.stdout
    assert "outputs/" in (project / ".gitignore").read_text()
    assert "Always run the gates before a merge." in (project / "CLAUDE.md").read_text()
    after = tree_snapshot(project)
    again = run_ccpt("update", str(project), "--template", str(changed_template))
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout
    assert tree_snapshot(project) == after


def test_a_dirty_working_tree_is_refused_naming_the_files(project: Path, changed_template: Path) -> None:
    (project / "CLAUDE.md").write_text("uncommitted\n")
    (project / "scratch.py").write_text("x = 1\n")
    before = tree_snapshot(project)
    result = run_ccpt("update", str(project), "--template", str(changed_template))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "uncommitted changes" in line and "CLAUDE.md" in line and "scratch.py" in line
    assert tree_snapshot(project) == before


def test_json_plan_for_scripts(project: Path, changed_template: Path) -> None:
    result = run_ccpt("update", str(project), "--pretend", "--json", "--template", str(changed_template))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["pretend"] is True and plan["up_to_date"] is False
    statuses = {entry["path"]: entry["status"] for entry in plan["files"]}
    assert statuses["docs/GLOSSARY.md"] == "conflict" and statuses["docs/sprints/TEMPLATE.md"] == "removed"
    assert plan["counts"]["kept-deleted"] == 1


@pytest.mark.parametrize("kind", ["plain folder", "repository without answers"])
def test_a_project_not_made_by_ccpt_gets_one_line(tmp_path: Path, kind: str) -> None:
    (tmp_path / "other").mkdir()
    if kind == "repository without answers":
        git(tmp_path / "other", "init", "-q")
    result = run_ccpt("update", "other", cwd=tmp_path)
    assert result.returncode == 1
    assert "was not made by ccpt new" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_missing_template_record_gets_one_line_with_the_fix(tmp_path: Path) -> None:
    make_project(tmp_path / "demo")
    project = tmp_path / "demo"
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("_ccpt_render: ", "_ccpt_render: 0000000000"))
    git(project, "commit", "-q", "-am", "a record from elsewhere")
    result = run_ccpt("update", cwd=project)
    assert result.returncode == 1
    assert "is not in this repository" in result.stderr and "git fetch origin ccpt-template" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_template_version_this_ccpt_does_not_ship_is_refused(tmp_path: Path) -> None:
    make_project(tmp_path / "demo")
    result = run_ccpt("update", "--to", "9.9.9", cwd=tmp_path / "demo")
    assert result.returncode == 1
    assert "template version 9.9.9 is not available" in result.stderr


def test_update_finds_the_project_from_a_subfolder(project: Path, changed_template: Path) -> None:
    result = run_ccpt("update", "--pretend", "--template", str(changed_template), cwd=project / "docs/adr")
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout)["CLAUDE.md"] == "merged"


def test_update_checks_the_gates_a_newer_threshold_reader_can_read(tmp_path: Path) -> None:
    """A project whose spec was recorded by an older ccpt, whose reader found no threshold in
    "Predicting only the majority class": updating makes it a gate, in the spec and in the record."""
    spec = load_spec("text-classification")
    older = replace(spec, penalties=[CrpgItem(item.text) for item in spec.penalties])
    create_project(NewRequest(target=tmp_path / "demo", spec=older, template=ProjectTemplate.load()))
    project = tmp_path / "demo"
    assert "predicted_classes" not in (project / "specs/task.yaml").read_text()

    result = run_ccpt("update", cwd=project)
    assert result.returncode == 0, result.stderr
    output = " ".join((result.stdout + result.stderr).split())  # rich wraps long notes
    assert "now a machine-checked gate of specs/task.yaml: Predicting only the majority class" in output
    penalties = yaml.safe_load((project / "specs/task.yaml").read_text())["penalties"]
    gates = {item["text"]: item.get("threshold") for item in penalties}
    assert gates["Predicting only the majority class"] == {
        "metric": "predicted_classes",
        "op": "<=",
        "value": 1.0,
        "unit": "count",
    }
    assert gates["Overfitting (>10% train-val gap)"]["metric"] == "train_val_gap"  # read anew as well
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["spec"]["penalties"] == penalties
    second = run_ccpt("update", cwd=project)
    assert "now a machine-checked gate" not in second.stdout + second.stderr
