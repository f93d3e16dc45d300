"""What a project keeps so that `ccpt update` needs no network and no git-hosted template.

- The answers: copier's answers file (`.copier-answers.yml`), rendered by the template itself.
- The pristine render: a commit on the `ccpt-template` branch of the project's own repository,
  made with plumbing so the user's branch is untouched. Each later render is a child commit.
- Which render the project is based on: the answers file's last line, `_ccpt_render: <commit>`.
  It lives in the user's working tree, not in the pristine commit (whose answers file has no
  such line), so discarding an update also discards the move to its render, and the next
  `ccpt update` offers the same changes again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ccpt.errors import CcptError
from ccpt.scaffold.git import Git
from ccpt.scaffold.template import ProjectTemplate

TEMPLATE_BRANCH = "ccpt-template"
RENDER_KEY = "_ccpt_render"


def record_render(git: Git, render_dir: Path, version: str, spec_id: str, parent: str | None = None) -> str:
    """Store `render_dir` as a pristine-render commit (no branch moved yet); its id."""
    message = (
        f"ccpt template {version} render (spec {spec_id})\n\n"
        "The pristine render `ccpt update` merges from. Made by ccpt; do not commit here.\n"
    )
    return git.commit_directory(render_dir, message, [parent] if parent else [])


def unstamped(text: bytes) -> bytes:
    """An answers file without its `_ccpt_render` line: the form the pristine render has."""
    prefix = RENDER_KEY.encode() + b":"
    return b"".join(line for line in text.splitlines(keepends=True) if not line.startswith(prefix))


def stamped(text: bytes, commit: str) -> bytes:
    """An answers file that says it is based on the render `commit`."""
    body = unstamped(text)
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return body + f"{RENDER_KEY}: {commit}\n".encode()


@dataclass(frozen=True)
class ProjectRecords:
    """A ccpt project's answers, the render it is based on, and the template version of that render."""

    project: Path
    answers: dict[str, Any]
    render_commit: str
    version: str


def find_project(start: Path, template: ProjectTemplate) -> Path:
    """The nearest folder at or above `start` with the answers file (stopping at a repository root),
    so `ccpt update` works from anywhere inside a project; `start` itself when there is none."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / template.answers_file).is_file():
            return folder
        if (folder / ".git").exists():
            break
    return start


def read_records(project: Path, template: ProjectTemplate) -> ProjectRecords:
    """The records of the project at `project`, or one clear line saying what is missing."""
    if not project.is_dir():
        raise CcptError(f"{project} is not a folder")
    answers_path = project / template.answers_file
    if not answers_path.is_file():
        raise CcptError(
            f"{project} was not made by ccpt new (it has no {template.answers_file})",
            hint="ccpt update works on projects made by `ccpt new`",
        )
    try:
        recorded = yaml.safe_load(answers_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CcptError(f"{answers_path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(recorded, dict):
        raise CcptError(f"{answers_path} is not a mapping of answers")
    commit = str(recorded.get(RENDER_KEY) or "")
    if not commit:
        raise CcptError(
            f"{project} has no record of its template render (no {RENDER_KEY} in {template.answers_file})",
            hint="it was made with --no-git, or the record line was removed",
        )
    git = Git(project)
    if not git.is_repo_root():
        raise CcptError(
            f"{project} is not the root of a git repository, where ccpt keeps its template render"
        )
    if git.rev_parse(commit) is None:
        raise CcptError(
            f"the template render {commit[:12]} named in {template.answers_file} is not in this repository",
            hint=f"fetch it: git fetch origin {TEMPLATE_BRANCH}:{TEMPLATE_BRANCH}",
        )
    answers = {key: value for key, value in recorded.items() if not str(key).startswith("_")}
    return ProjectRecords(project, answers, commit, str(answers.get("ccpt_version", "unknown")))
