"""`ccpt new` never leaves a half-written project and never deletes the user's files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ccpt.specs import load_spec
from tests.conftest import run_ccpt
from tests.scaffold_support import git, git_isolated, leftovers, small_template, tree_snapshot

pytestmark = pytest.mark.usefixtures(git_isolated.__name__)

# A Jinja loop of 10^10 empty iterations: the render is still running when the test interrupts it.
ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_a_non_empty_target_is_refused_and_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run_ccpt("new", "proj", "--defaults", cwd=tmp_path)
    assert result.returncode == 1
    assert "proj is not empty" in result.stderr and "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert tree_snapshot(target) == {"notes.txt": b"mine"}
    assert leftovers(tmp_path, "proj") == []


def test_force_keeps_the_users_files_outside_the_templates_paths(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    (target / "data").mkdir(parents=True)
    (target / "data/raw.csv").write_text("x,y\n1,2\n")
    (target / "notes.txt").write_text("mine")
    (target / "README.md").write_text("my old readme")
    result = run_ccpt("new", "proj", "--defaults", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (target / "data/raw.csv").read_text() == "x,y\n1,2\n"
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "README.md").read_text().startswith("# proj")
    assert "Replaced 1 of your files: README.md" in result.stdout
    # The first commit holds the template's files only; the user's stay untracked for them to decide.
    committed = git(target, "ls-files").split()
    assert "CLAUDE.md" in committed and "notes.txt" not in committed and "data/raw.csv" not in committed
    assert sorted(git(target, "ls-files", "--others").split()) == ["data/raw.csv", "notes.txt"]


def test_force_into_an_existing_repository_records_the_render_without_committing(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    git(target, "init", "-q", "-b", "trunk")
    (target / "notes.txt").write_text("mine")
    git(target, "add", "notes.txt")
    git(target, "commit", "-q", "-m", "mine")
    head = git(target, "rev-parse", "HEAD")
    result = run_ccpt("new", "proj", "--defaults", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert git(target, "rev-parse", "HEAD") == head
    assert git(target, "branch", "--show-current").strip() == "trunk"
    assert "CLAUDE.md" in git(target, "ls-tree", "-r", "--name-only", "ccpt-template").split()
    assert (target / "CLAUDE.md").is_file() and (target / "notes.txt").read_text() == "mine"
    assert "left for you to commit" in result.stdout


def test_a_render_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    files = {f"ok{i}.txt.jinja": "{{ project_name }}\n" for i in range(20)}
    template = small_template(tmp_path / "tpl", {**files, "zz/broken.txt.jinja": "{{ 1 // 0 }}"})
    result = run_ccpt("new", "deep/er/proj", "--template", str(template), "--defaults", cwd=tmp_path)
    assert result.returncode == 1
    assert "rendering the template failed: ZeroDivisionError" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "deep").exists()  # not even the parent folders it made


def test_a_failed_render_with_force_leaves_the_users_folder_as_it_was(tmp_path: Path) -> None:
    template = small_template(tmp_path / "tpl", {"a.txt": "a", "b.txt.jinja": "{{ 1 // 0 }}"})
    target = tmp_path / "proj"
    target.mkdir()
    (target / "a.txt").write_text("mine")
    before = tree_snapshot(target)
    result = run_ccpt("new", "proj", "--template", str(template), "--defaults", "--force", cwd=tmp_path)
    assert result.returncode == 1
    assert tree_snapshot(target) == before and not (target / ".git").exists()
    assert leftovers(tmp_path, "proj") == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_render_leaves_nothing_behind(tmp_path: Path, signum: int) -> None:
    files = {f"ok{i}.txt": "ok\n" for i in range(10)}
    template = small_template(tmp_path / "tpl", {**files, "slow.txt.jinja": ENDLESS})
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ccpt", "new", "proj", "--template", str(template), "--defaults"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any((tmp_path / stage / "project").is_dir() for stage in leftovers(tmp_path, "proj")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the render never started"
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the endless file now
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "proj").exists()
    assert leftovers(tmp_path, "proj") == []


def test_a_task_kind_given_as_the_spec_names_the_built_in_specs_of_that_kind(tmp_path: Path) -> None:
    result = run_ccpt("new", "proj", "--spec", "token-classification", "--defaults", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "built-in specs of task kind token-classification: named-entity-recognition" in result.stderr
    assert not (tmp_path / "proj").exists()


def test_a_spec_whose_task_kind_the_template_does_not_render_is_refused_naming_those_it_does(
    tmp_path: Path,
) -> None:
    # The built-in template renders every kind a spec may name; a template of one's own may not.
    kinds = "task_kind:\n  type: str\n  choices: [masked-lm, image-classification]\n  default: masked-lm\n"
    template = small_template(tmp_path / "tpl", {"a.txt": "a"}, kinds)
    spec = ["--spec", "document-understanding", "--template", str(template)]
    result = run_ccpt("new", "proj", *spec, "--defaults", cwd=tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "kind document-understanding, which ccpt new cannot render yet" in line
    assert "task kinds that render: image-classification, masked-lm" in line
    assert len(line.splitlines()) == 1
    assert not (tmp_path / "proj").exists()


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("precision=fp64", "not one of auto, bf16, fp32"),
        ("colour=blue", "the template has no such question"),
        ("task_kind=causal-lm", "comes from the task spec"),
        ("precision", "is not key=value"),
    ],
)
def test_bad_data_is_one_clear_line(tmp_path: Path, pair: str, expected: str) -> None:
    result = run_ccpt("new", "proj", "--defaults", "--data", pair, cwd=tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "proj").exists()


def test_data_answers_a_question(tmp_path: Path) -> None:
    result = run_ccpt("new", "proj", "--defaults", "--data", "precision=bf16", "--no-git", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((tmp_path / "proj/.copier-answers.yml").read_text())
    assert answers["precision"] == "bf16"
    assert "| precision | `bf16` |" in (tmp_path / "proj/README.md").read_text()


def test_pretend_lists_what_would_be_written_and_writes_nothing(tmp_path: Path) -> None:
    result = run_ccpt("new", "proj", "--pretend", "--defaults", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "create" in result.stdout and "CLAUDE.md" in result.stdout and "specs/task.yaml" in result.stdout
    assert "Nothing was written" in result.stdout
    as_json = run_ccpt("new", "proj", "--pretend", "--defaults", "--json", cwd=tmp_path)
    planned = json.loads(as_json.stdout)["files"]
    kib = sum(item["size"] for item in planned) / 1024
    assert f"Would write {len(planned)} files ({len(planned)} new, {kib:,.0f} KiB) to proj" in result.stdout
    assert os.listdir(tmp_path) == []


def test_no_git_makes_no_repository_and_update_says_the_record_is_missing(tmp_path: Path) -> None:
    result = run_ccpt("new", "proj", "--defaults", "--no-git", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "proj/.git").exists()
    assert "_ccpt_render" not in (tmp_path / "proj/.copier-answers.yml").read_text()
    update = run_ccpt("update", "proj", cwd=tmp_path)
    assert update.returncode == 1
    assert "no record of its template render" in update.stderr
    assert len(update.stderr.strip().splitlines()) == 1


def test_without_a_terminal_open_questions_take_their_defaults_with_a_note(tmp_path: Path) -> None:
    spec = load_spec("causal-lm").to_dict()
    spec.pop("scaffold", None)  # leaves dataset, model_name, precision, distributed unanswered
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(spec))
    result = run_ccpt("new", "proj", "--spec", "lm.yaml", "--no-git", cwd=tmp_path, input="")
    assert result.returncode == 0, result.stderr
    assert "no terminal to ask on" in result.stderr and "precision" in result.stderr
    answers = yaml.safe_load((tmp_path / "proj/.copier-answers.yml").read_text())
    assert answers["precision"] == "auto" and answers["distributed"] == "ddp"


def test_commits_work_without_a_git_identity_and_none_is_written_to_config(tmp_path: Path) -> None:
    result = run_ccpt("new", "proj", "--defaults", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert git(tmp_path / "proj", "log", "-1", "--format=%an <%ae>").strip() == "ccpt <ccpt@localhost>"
    assert "user.name" not in (tmp_path / "proj/.git/config").read_text()


def test_a_configured_git_identity_is_used(tmp_path: Path, git_isolated: Path) -> None:
    (git_isolated / "gitconfig").write_text("[user]\n\tname = Ada\n\temail = ada@example.com\n")
    result = run_ccpt("new", "proj", "--defaults", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert git(tmp_path / "proj", "log", "-1", "--format=%an").strip() == "Ada"


@pytest.mark.slow
def test_open_questions_are_asked_on_a_terminal(tmp_path: Path) -> None:
    """A real pseudo-terminal: copier asks what the spec leaves open, and the answers stick."""
    import pty
    import select

    spec = load_spec("causal-lm").to_dict()
    spec.pop("scaffold", None)
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(spec))
    pid, fd = pty.fork()
    if pid == 0:  # the child: ccpt new on the terminal (never returns into pytest)
        try:
            os.chdir(tmp_path)
            os.execv(
                sys.executable, [sys.executable, "-m", "ccpt", "new", "proj", "--spec", "lm.yaml", "--no-git"]
            )
        finally:
            os._exit(127)
    seen = b""

    def wait_for(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while text not in seen:
            assert time.monotonic() < deadline, seen[-500:]
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                seen += os.read(fd, 4096)

    for prompt, answer in (
        (b"Dataset", b"\r"),
        (b"Model", b"tiny/local-model\r"),
        (b"precision", b"\x1b[B\r"),
    ):
        wait_for(prompt)
        os.write(fd, answer)
    wait_for(b"Distributed")
    os.write(fd, b"\r")
    wait_for(b"ccpt new")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    answers = yaml.safe_load((tmp_path / "proj/.copier-answers.yml").read_text())
    assert answers["model_name"] == "tiny/local-model" and answers["precision"] == "bf16"
    assert answers["dataset"] == "builtin" and answers["distributed"] == "ddp"


def test_new_dot_fills_the_empty_current_folder_in_place(tmp_path: Path) -> None:
    here = tmp_path / "digits"
    here.mkdir()
    inode = here.stat().st_ino
    result = run_ccpt("new", ".", "--defaults", cwd=here)
    assert result.returncode == 0, result.stderr
    assert here.stat().st_ino == inode  # the same folder (a shell sitting in it stays valid)
    assert yaml.safe_load((here / ".copier-answers.yml").read_text())["project_name"] == "digits"
    assert git(here, "status", "--porcelain") == "" and "cd ." not in result.stdout
