"""`ccpt update` merges a template change into an edited project: the plan, the files, the records.

The template change is a modified copy of the built-in template (version 0.2.0 here); the user's
edits are real commits in the project's own repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ccpt.scaffold.template import ProjectTemplate
from ccpt.scaffold.update import Status, apply_update, planned_update
from tests.scaffold_support import (
    builtin_template_copy,
    git,
    git_bytes,
    git_isolated,
    make_project,
    small_template,
    tree_snapshot,
)

pytestmark = pytest.mark.usefixtures(git_isolated.__name__)

# What the fixtures below do to each path, and the plan that must come out of it.
EXPECTED_PLAN = {
    ".copier-answers.yml": Status.UPDATED,  # ccpt_version 0.1.0 -> 0.2.0
    ".gitignore": Status.UPDATED,  # template changed, user did not
    ".pre-commit-config.yaml": Status.KEPT_DELETED,  # template changed, user deleted
    "CLAUDE.md": Status.MERGED,  # template changed the top, user the bottom
    "README.md": Status.CONFLICT,  # both changed the title line
    "docs/CONTRIBUTING.md": Status.ADDED,  # new in the template
    "docs/GLOSSARY.md": Status.CONFLICT,  # new in the template, and the user made their own
    "docs/adr/0000-template.md": Status.KEPT,  # template dropped it, user had edited it
    "docs/adr/0001-training-stack.md": Status.UPDATED,  # shows the ccpt version
    "docs/sprints/TEMPLATE.md": Status.REMOVED,  # template dropped it, user never touched it
}


def ours_to_judge(plan_changes: list) -> dict[str, Status]:
    """The touched paths, leaving out the generated code (src/, tests/, pyproject.toml): its files may
    show the version bump as `updated`, and nothing else, since the user edited none of them."""
    touched = {change.path: change.status for change in plan_changes if change.status is not Status.UNCHANGED}
    code = {
        path: status for path, status in touched.items() if path.startswith(("src/", "tests/", "pyproject"))
    }
    assert set(code.values()) <= {Status.UPDATED}, code
    return {path: status for path, status in touched.items() if path not in code}


def change_template(template_dir: Path) -> None:
    """The 'next release' of the template: one change of every kind."""
    files = template_dir / "template"
    with (files / ".gitignore").open("a") as out:
        out.write("outputs/\n")
    with (files / ".pre-commit-config.yaml").open("a") as out:
        out.write("# hooks run in CI too\n")
    claude = files / "CLAUDE.md.jinja"
    text = claude.read_text()
    assert "Guidance for Claude Code in this repository." in text
    claude.write_text(
        text.replace("Guidance for Claude Code in this repository.", "Guidance for Claude Code.")
    )
    readme = files / "README.md.jinja"
    readme.write_text(
        readme.read_text().replace("\n# {{ project_name }}\n", "\n# {{ project_name }}: a ccpt project\n")
    )
    (files / "docs/sprints/TEMPLATE.md").unlink()
    (files / "docs/adr/0000-template.md").unlink()
    (files / "docs/CONTRIBUTING.md").write_text("# Contributing\n\nTests first.\n")
    (files / "docs/GLOSSARY.md").write_text(
        "# Glossary\n\nCRPG: constraints, rewards, penalties, goal state.\n"
    )


def edit_project(project: Path) -> None:
    """What the user did since `ccpt new`, committed."""
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# demo\n", "# demo: my digit reader\n", 1))
    with (project / "CLAUDE.md").open("a") as out:
        out.write("\n## House rules\n\nAlways run the gates before a merge.\n")
    (project / ".pre-commit-config.yaml").unlink()
    with (project / "docs/adr/0000-template.md").open("a") as out:
        out.write("\nWe also record who reviewed the decision.\n")
    with (project / "docs/adr/README.md").open("a") as out:
        out.write("| [0002](0002-lora.md) | LoRA for the large model | proposed |\n")
    (project / "docs/GLOSSARY.md").write_text("# Our glossary\n\nMFU: model flops utilisation.\n")
    (project / "notes").mkdir()
    (project / "notes/ideas.md").write_text("try mixup\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "my edits")


@pytest.fixture(scope="module")
def template_v1(tmp_path_factory: pytest.TempPathFactory) -> ProjectTemplate:
    """A snapshot of the built-in template, frozen for this module (the tree may change meanwhile)."""
    return ProjectTemplate.load(builtin_template_copy(tmp_path_factory.mktemp("template-v1") / "project"))


@pytest.fixture(scope="module")
def template_v2(template_v1: ProjectTemplate, tmp_path_factory: pytest.TempPathFactory) -> ProjectTemplate:
    """The next release of that snapshot: version 0.2.0 with `change_template` applied."""
    root = Path(shutil.copytree(template_v1.root, tmp_path_factory.mktemp("template-v2") / "project"))
    change_template(root)
    return ProjectTemplate.load(root, version="0.2.0")


@pytest.fixture
def project(tmp_path: Path, template_v1: ProjectTemplate) -> Path:
    make_project(tmp_path / "demo", template=template_v1)
    edit_project(tmp_path / "demo")
    return tmp_path / "demo"


def test_a_fresh_project_is_up_to_date(tmp_path: Path, template_v1: ProjectTemplate) -> None:
    make_project(tmp_path / "demo", template=template_v1)
    with planned_update(tmp_path / "demo", template_v1) as plan:
        assert plan.up_to_date
        assert {change.status for change in plan.changes} == {Status.UNCHANGED}


def test_the_plan_names_what_happens_to_each_file(project: Path, template_v2: ProjectTemplate) -> None:
    before = tree_snapshot(project)
    with planned_update(project, template_v2) as plan:
        assert not plan.up_to_date
        assert (plan.from_version, plan.to_version) == ("0.1.0", "0.2.0")
        assert ours_to_judge(plan.changes) == EXPECTED_PLAN
        unchanged = {change.path for change in plan.with_status(Status.UNCHANGED)}
        assert "docs/adr/README.md" in unchanged and "src/data.py" in unchanged
        assert "notes/ideas.md" not in {change.path for change in plan.changes}
    assert tree_snapshot(project) == before  # planning writes nothing


def test_update_keeps_every_edit_and_brings_every_change(project: Path, template_v2: ProjectTemplate) -> None:
    head = git(project, "rev-parse", "HEAD")
    with planned_update(project, template_v2) as plan:
        result = apply_update(plan)
    assert (project / ".gitignore").read_text().endswith("outputs/\n")
    assert not (project / ".pre-commit-config.yaml").exists()
    claude = (project / "CLAUDE.md").read_text()
    assert (
        "Guidance for Claude Code. The task spec" in claude
        and "Always run the gates before a merge." in claude
    )
    assert "<<<<<<<" not in claude
    readme = (project / "README.md").read_text()
    assert readme.startswith("<<<<<<< yours\n")
    assert "# demo: my digit reader" in readme and "# demo: a ccpt project" in readme
    assert ">>>>>>> template 0.2.0" in readme
    glossary = (project / "docs/GLOSSARY.md").read_text()
    assert (
        "MFU: model flops utilisation." in glossary
        and "CRPG: constraints" in glossary
        and "=======" in glossary
    )
    assert (project / "docs/CONTRIBUTING.md").read_text() == "# Contributing\n\nTests first.\n"
    assert not (project / "docs/sprints/TEMPLATE.md").exists()
    assert "who reviewed the decision" in (project / "docs/adr/0000-template.md").read_text()
    assert "0002-lora.md" in (project / "docs/adr/README.md").read_text()
    assert (project / "notes/ideas.md").read_text() == "try mixup\n"
    assert "made with ccpt 0.2.0" in (project / "docs/adr/0001-training-stack.md").read_text()
    # Records: the user's branch is untouched (the update waits for review), the base moved on.
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "rev-parse", "ccpt-template").strip() == result.template_commit
    assert git(project, "rev-parse", "ccpt-template^").strip() == plan.base_commit
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["ccpt_version"] == "0.2.0" and answers["_ccpt_render"] == result.template_commit
    assert [change.path for change in plan.with_status(Status.CONFLICT)] == ["README.md", "docs/GLOSSARY.md"]


def test_a_second_update_right_after_is_a_no_op(project: Path, template_v2: ProjectTemplate) -> None:
    with planned_update(project, template_v2) as plan:
        apply_update(plan)
    after_first = tree_snapshot(project)
    with planned_update(project, template_v2) as again:
        assert again.up_to_date
    assert tree_snapshot(project) == after_first


def test_a_discarded_update_is_offered_again(project: Path, template_v2: ProjectTemplate) -> None:
    with planned_update(project, template_v2) as plan:
        apply_update(plan)
    git(project, "checkout", "--", ".")
    git(project, "clean", "-q", "-fd")
    with planned_update(project, template_v2) as again:
        assert ours_to_judge(again.changes) == EXPECTED_PLAN


def test_an_error_while_writing_puts_every_file_back(
    project: Path, template_v2: ProjectTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error part-way through (injected on the fourth write) leaves the repository as it was."""
    import ccpt.scaffold.update as update_module

    real_write = update_module.write_file
    calls = []

    def failing_write(path: Path, content: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real_write(path, content, mode)

    before = tree_snapshot(project)
    base = git(project, "rev-parse", "ccpt-template")
    monkeypatch.setattr(update_module, "write_file", failing_write)
    with planned_update(project, template_v2) as plan, pytest.raises(OSError, match="No space left"):
        apply_update(plan)
    monkeypatch.setattr(update_module, "write_file", real_write)
    assert len(calls) >= 4
    assert tree_snapshot(project) == before
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "rev-parse", "ccpt-template") == base


def test_a_changed_answer_rerenders_what_depends_on_it(tmp_path: Path, template_v1: ProjectTemplate) -> None:
    make_project(tmp_path / "demo", template=template_v1)
    with planned_update(tmp_path / "demo", template_v1, {"precision": "bf16"}) as plan:
        touched = {
            change.path: change.status for change in plan.changes if change.status is not Status.UNCHANGED
        }
        assert (
            touched.get("README.md") is Status.UPDATED
            and touched.get(".copier-answers.yml") is Status.UPDATED
        )
        apply_update(plan)
    assert "| precision | `bf16` |" in (tmp_path / "demo/README.md").read_text()
    assert yaml.safe_load((tmp_path / "demo/.copier-answers.yml").read_text())["precision"] == "bf16"


def test_binary_files_are_updated_when_untouched_and_never_half_merged(tmp_path: Path) -> None:
    blobs = {"logo.bin": b"\x89PNG\0v1", "weights.bin": b"\0\1\2v1"}
    v1 = small_template(tmp_path / "v1", {"README.md.jinja": "# {{ project_name }}\n"})
    for name, data in blobs.items():
        (v1 / "template" / name).write_bytes(data)
    v2 = Path(shutil.copytree(v1, tmp_path / "v2"))
    for name in blobs:
        (v2 / "template" / name).write_bytes(blobs[name].replace(b"v1", b"v2"))
    make_project(tmp_path / "demo", template=ProjectTemplate.load(v1))
    project = tmp_path / "demo"
    (project / "logo.bin").write_bytes(b"\x89PNG\0mine")
    git(project, "commit", "-q", "-am", "my logo")
    with planned_update(project, ProjectTemplate.load(v2)) as plan:
        statuses = {change.path: change for change in plan.changes}
        assert statuses["weights.bin"].status is Status.UPDATED
        assert statuses["logo.bin"].status is Status.CONFLICT
        assert "git show ccpt-template:logo.bin" in statuses["logo.bin"].detail
        apply_update(plan)
    assert (project / "weights.bin").read_bytes() == b"\0\1\2v2"
    assert (project / "logo.bin").read_bytes() == b"\x89PNG\0mine"
    assert git_bytes(project, "show", "ccpt-template:logo.bin") == b"\x89PNG\0v2"


def test_successive_updates_each_merge_from_the_last_render(tmp_path: Path) -> None:
    def release(name: str, first_line: str) -> ProjectTemplate:
        root = small_template(tmp_path / name, {"notes.md": f"{first_line}\nmiddle\nlast line\n"})
        return ProjectTemplate.load(root, version=name)

    v1, v2, v3 = release("1.0", "one"), release("2.0", "two"), release("3.0", "three")
    make_project(tmp_path / "demo", template=v1)
    project = tmp_path / "demo"
    (project / "notes.md").write_text("one\nmiddle\nmy last line\n")
    git(project, "commit", "-q", "-am", "mine")
    for template, expected in ((v2, "two\nmiddle\nmy last line\n"), (v3, "three\nmiddle\nmy last line\n")):
        with planned_update(project, template) as plan:
            assert {change.path: change.status for change in plan.changes}["notes.md"] is Status.MERGED
            apply_update(plan)
        assert (project / "notes.md").read_text() == expected
        git(project, "commit", "-q", "-am", f"ccpt update to {template.version}")
    history = git(project, "log", "--format=%s", "ccpt-template").splitlines()
    assert [line.split()[2] for line in history] == ["3.0", "2.0", "1.0"]
