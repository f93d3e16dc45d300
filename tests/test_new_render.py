"""`ccpt new` renders each task kind into a complete project with its Claude Code layer and git records.

The generated project's own pytest and training run in tests/test_project_*.py; these tests pin
what ccpt itself promises about the render.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ccpt.commands.new import folded
from ccpt.errors import CcptError
from ccpt.resources import agent_specs_dir, scaffolds_dir
from ccpt.scaffold.render import agent_files, front_matter, render_pristine
from ccpt.scaffold.template import UNSAFE_KEYS, ProjectTemplate
from ccpt.specs import load_spec
from ccpt.specs.model import SCAFFOLD_KINDS
from tests.conftest import run_ccpt
from tests.project_support import KIND_SPECS
from tests.scaffold_support import git, git_isolated, make_project, small_template, tree_snapshot

pytestmark = pytest.mark.usefixtures(git_isolated.__name__)

AGENT_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SCAFFOLD_KINDS))
def test_each_task_kind_renders_with_defaults_into_a_committed_project(tmp_path: Path, kind: str) -> None:
    spec = KIND_SPECS.get(kind, kind)
    result = run_ccpt("new", "proj", "--spec", spec, "--defaults", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "proj"
    for path in (
        "README.md",
        "CLAUDE.md",
        "specs/task.yaml",
        ".copier-answers.yml",
        ".pre-commit-config.yaml",
        ".github/workflows/ci.yml",
        ".github/copilot-instructions.md",
        ".github/ISSUE_TEMPLATE/user-story.md",
        "docs/adr/0001-training-stack.md",
        "docs/sprints/TEMPLATE.md",
        ".gitignore",
    ):
        assert (project / path).is_file(), path
    assert load_spec(str(project / "specs/task.yaml")).to_dict() == load_spec(spec).to_dict()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["task_kind"] == kind and answers["spec_id"] == spec and answers["project_name"] == "proj"
    assert git(project, "status", "--porcelain") == ""
    assert len(git(project, "log", "--format=%H").split()) == 1
    # The short first run it suggests, the same in the panel, the README and CLAUDE.md: long
    # enough for a reader (which answers nothing for ~150 steps) to answer.
    steps = 300 if kind == "question-answering" else 60
    first_run = f"python src/runner.py train --max-steps {steps}"
    assert "ccpt new" in result.stdout and first_run in result.stdout
    assert all(first_run in (project / name).read_text() for name in ("README.md", "CLAUDE.md"))


def test_the_template_record_is_a_separate_branch_with_the_pristine_render(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo")
    assert project.git is not None and project.git.commit is not None
    root = tmp_path / "demo"
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["_ccpt_render"] == project.git.template_commit
    assert git(root, "rev-parse", "ccpt-template").strip() == project.git.template_commit
    # Same files as the first commit, except that the record's answers file has no stamp line.
    changed = git(root, "diff", "--name-only", "ccpt-template", "HEAD").split()
    assert changed == [".copier-answers.yml"]
    assert "_src_path" not in (root / ".copier-answers.yml").read_text()  # no machine paths recorded
    assert sorted(git(root, "ls-files").split()) == project.files  # every rendered file is committed


def test_rendering_the_same_answers_twice_gives_identical_bytes(tmp_path: Path) -> None:
    template = ProjectTemplate.load()
    answers = {"project_name": "demo", "spec": load_spec("text-classification").to_dict()}
    answers |= {"task_kind": "text-classification", "spec_id": "text-classification"}
    render_pristine(template, answers, tmp_path / "one")
    render_pristine(template, dict(reversed(list(answers.items()))), tmp_path / "two")
    assert tree_snapshot(tmp_path / "one") == tree_snapshot(tmp_path / "two")


def test_agent_files_are_valid_claude_code_subagents(tmp_path: Path) -> None:
    make_project(tmp_path / "demo")
    agents = sorted((tmp_path / "demo/.claude/agents").iterdir())
    shipped = agent_files(agent_specs_dir())
    assert [path.name for path in agents] == [path.name for path in shipped]
    assert len(agents) == 15
    for path in agents:
        text = path.read_text()
        assert text.startswith("---\n"), path.name
        meta = front_matter(path)
        assert AGENT_NAME.match(str(meta.get("name", ""))), (path.name, meta.get("name"))
        assert meta["name"] == path.stem
        assert len(str(meta.get("description", "")).strip()) > 20, path.name
        body = text.split("\n---", 2)[-1]
        assert len(body.strip()) > 200, f"{path.name} has no system prompt"
    assert not (tmp_path / "demo/.claude/agents/README.md").exists()
    assert not any(path.name.startswith("_") for path in agents)


def test_claude_md_routes_to_every_agent_and_carries_the_spec_and_charter(tmp_path: Path) -> None:
    make_project(tmp_path / "demo")
    claude = (tmp_path / "demo/CLAUDE.md").read_text()
    names = {path.stem for path in (tmp_path / "demo/.claude/agents").iterdir()}
    routed = set(re.findall(r"^\| `([a-z-]+)` \|", claude, flags=re.M))
    assert routed == names
    owners = claude.split("Module owners:", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"\b([a-z]+(?:-[a-z]+)+)\b", owners))
    assert named and named <= names, named - names
    spec = load_spec("image-classification")
    assert spec.title in claude and spec.story.i_want in claude
    for item in spec.rewards + spec.constraints + spec.penalties:
        assert item.text in claude
    assert "accuracy >= 0.9" in claude
    charter = next(agent_specs_dir().glob("_*.md"), None)
    if charter is not None:
        assert charter.read_text().strip().splitlines()[0] in claude


def test_readme_has_the_user_story_crpg_table_and_commands(tmp_path: Path) -> None:
    make_project(tmp_path / "nlp", spec="text-classification")
    readme = (tmp_path / "nlp/README.md").read_text()
    spec = load_spec("text-classification")
    assert readme.startswith("# nlp\n")
    assert f"**I want** {spec.story.i_want}" in readme
    assert "| | item | machine check |" in readme
    for section, label in (("constraints", "Constraint"), ("rewards", "Reward"), ("penalties", "Penalty")):
        for item in getattr(spec, section):
            assert f"| {label} | {item.text.replace('|', chr(92) + '|')} |" in readme
    for command in ("python src/runner.py train", "python src/runner.py check", "serve --port", "pytest"):
        assert command in readme


def test_the_template_asks_for_no_code_to_run() -> None:
    config = yaml.safe_load((scaffolds_dir() / "project/copier.yml").read_text())
    assert [key for key in UNSAFE_KEYS if key in config] == []
    assert "_envops" not in config  # no custom Jinja environment either


def test_a_template_that_asks_to_run_code_is_refused_before_rendering(tmp_path: Path) -> None:
    template_dir = small_template(
        tmp_path / "tpl", {"a.txt": "a"}, config="_tasks:\n  - touch {{ _copier_conf.dst_path }}/pwned\n"
    )
    result = run_ccpt("new", "proj", "--template", str(template_dir), "--defaults", "--no-git", cwd=tmp_path)
    assert result.returncode == 1
    assert "asks to run code (_tasks)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "proj").exists()


def _unchecked(template_dir: Path) -> ProjectTemplate:
    """The template as ProjectTemplate.load would give it, minus ccpt's own refusal of unsafe keys."""
    return ProjectTemplate(
        root=template_dir, questions={}, answers_file=".copier-answers.yml", version="0", agents_dir=None
    )


def test_copier_skips_tasks_even_past_ccpts_own_check(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    template_dir = small_template(tmp_path / "tpl", {"a.txt": "a"}, config=f"_tasks:\n  - touch {marker}\n")
    render_pristine(_unchecked(template_dir), {"project_name": "x"}, tmp_path / "out")
    assert (tmp_path / "out/a.txt").read_text() == "a"
    assert not marker.exists()


def test_copier_refuses_jinja_extensions_because_it_runs_unsafe_false(tmp_path: Path) -> None:
    template_dir = small_template(
        tmp_path / "tpl", {"a.txt": "a"}, config="_jinja_extensions:\n  - jinja2.ext.do\n"
    )
    with pytest.raises(CcptError, match="unsafe feature: jinja_extensions"):
        render_pristine(_unchecked(template_dir), {"project_name": "x"}, tmp_path / "out")


def test_ccpt_help_and_the_new_and_update_commands_do_not_import_copier() -> None:
    code = (
        "import sys, ccpt.app, ccpt.commands.new, ccpt.commands.update; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'copier', 'yaml', 'jinja2', 'torch'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert run_ccpt("new", "--help").returncode == 0


def test_json_result_for_scripts(tmp_path: Path) -> None:
    result = run_ccpt("new", "proj", "--defaults", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["task_kind"] == "image-classification" and "CLAUDE.md" in made["files"]
    assert made["git"]["branch"] == "main" and made["git"]["template_commit"]
    assert made["answers"]["precision"] == "auto"


def test_workflow_hooks_and_issue_templates_are_well_formed(tmp_path: Path) -> None:
    make_project(tmp_path / "demo", spec="causal-lm")
    root = tmp_path / "demo"
    workflow = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    steps = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert any("pytest" in run for run in steps) and any("ruff check" in run for run in steps)
    # torch's CPU build goes in before the project, so CI does not download CUDA libraries.
    install = next(run for run in steps if "pip install -e" in run).splitlines()
    torch_line = next(i for i, line in enumerate(install) if line.strip().startswith("pip install torch"))
    assert "whl/cpu" in install[torch_line] and torch_line < next(
        i for i, line in enumerate(install) if "pip install -e" in line
    )
    hooks = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
    assert {hook["id"] for repo in hooks["repos"] for hook in repo["hooks"]} == {"ruff-check", "ruff-format"}
    templates = sorted((root / ".github/ISSUE_TEMPLATE").glob("*.md"))
    assert [path.stem for path in templates] == ["bug", "epic", "feature", "spike", "user-story"]
    for path in templates:
        meta = front_matter(path)
        assert meta.get("name") and meta.get("about"), path.name
    story = (root / ".github/ISSUE_TEMPLATE/user-story.md").read_text()
    for letter in ("Independent", "Negotiable", "Valuable", "Estimable", "Small", "Testable"):
        assert f"- [ ] **{letter}**" in story
    assert (root / "docs/adr/0000-template.md").is_file() and (root / "docs/sprints/TEMPLATE.md").is_file()
    assert "causal-lm" in (root / "docs/adr/0001-training-stack.md").read_text()


def test_a_long_next_step_is_folded_before_an_option_and_pastes_back_whole() -> None:
    command = (
        "python src/runner.py train --max-steps 300 --run-name base --set dataset=builtin"
        " --set tokenizer=bpe --set vocab_size=4096"
    )
    lines = folded(command)
    assert lines == [
        "python src/runner.py train --max-steps 300 --run-name base \\",
        "    --set dataset=builtin --set tokenizer=bpe --set vocab_size=4096",
    ]
    assert all(len(line) <= 76 for line in lines)  # the panel's two-space indent: 78 of 80 columns
    # A shell drops each backslash-newline, so the lines read back as the one command.
    assert shlex.split("\n".join(lines).replace("\\\n", "")) == command.split()
    assert folded("cd 'a long folder name'") == ["cd 'a long folder name'"]  # short: one line
