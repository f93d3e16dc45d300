"""Helpers for the `ccpt new` / `ccpt update` tests: isolated git, template copies, small templates.

Every template here is a real copier template on disk and every project a real git repository;
a "template change" is a modified copy of the built-in template, rendered as ccpt would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ccpt.resources import scaffolds_dir
from ccpt.scaffold.project import NewProject, NewRequest, create_project
from ccpt.scaffold.template import ProjectTemplate
from ccpt.specs import load_spec


@pytest.fixture
def git_isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """git with no global or system config, hence no identity (ccpt's fallback must work), as in CI."""
    home = tmp_path_factory.mktemp("git-home")
    (home / "gitconfig").write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    yield home


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` (as the user would) and return its stdout."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "tester@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "tester@example.com"}
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def git_bytes(repo: Path, *args: str) -> bytes:
    """Like `git`, for output that is not text (blobs)."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout


def builtin_template_copy(dest: Path) -> Path:
    """A copy of the built-in template (copier.yml + template/) that a test may change."""
    shutil.copytree(scaffolds_dir() / "project", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def small_template(dest: Path, files: Mapping[str, str], config: str = "") -> Path:
    """A minimal copier template: a project_name question, its answers file, and `files` (under template/)."""
    (dest / "template").mkdir(parents=True)
    (dest / "copier.yml").write_text(
        "_subdirectory: template\n_templates_suffix: .jinja\n"
        "project_name:\n  type: str\n  default: demo\n" + textwrap.dedent(config)
    )
    files = {"{{_copier_conf.answers_file}}.jinja": "project_name: {{ project_name }}\n", **files}
    for path, text in files.items():
        target = dest / "template" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return dest


def make_project(
    target: Path,
    spec: str = "image-classification",
    template: ProjectTemplate | None = None,
    **options: object,
) -> NewProject:
    """`ccpt new TARGET --spec SPEC --defaults` through the core (faster than a subprocess)."""
    request = NewRequest(
        target=target, spec=load_spec(spec), template=template or ProjectTemplate.load(), **options
    )
    return create_project(request)


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (outside .git) with its bytes: to prove that nothing changed."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def leftovers(parent: Path, name: str) -> list[str]:
    """Staging folders ccpt new would have left beside `parent / name`."""
    return [entry for entry in os.listdir(parent) if entry.startswith(f".{name}.ccpt-")]
