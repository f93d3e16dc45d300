"""`ccpt new`: a task spec in, a complete project (with its git records) out, or nothing at all.

The order is what makes it safe: answers are checked, the render is made in a staging folder
beside the target, git init + the pristine-render record + the first commit happen there too
when the target is fresh, and only then does the project move into place.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ccpt.scaffold.answers import answers_for_spec, unanswered
from ccpt.scaffold.git import Git, require_git
from ccpt.scaffold.interrupts import sigterm_interrupts
from ccpt.scaffold.place import Target, inspect_target, move_into_place, replaced_files, staging_dir
from ccpt.scaffold.records import TEMPLATE_BRANCH, record_render, stamped
from ccpt.scaffold.render import render_pristine
from ccpt.scaffold.template import ProjectTemplate
from ccpt.specs.model import TaskSpec


@dataclass(frozen=True)
class NewRequest:
    """Everything `ccpt new` was asked for, resolved: the spec is loaded, the template read."""

    target: Path
    spec: TaskSpec
    template: ProjectTemplate
    data: Mapping[str, Any] = field(default_factory=dict)
    interactive: bool = False  # prompt for what the spec leaves open (when there is a terminal)
    force: bool = False
    git: bool = True

    @property
    def project_name(self) -> str:
        return self.target.resolve().name


@dataclass(frozen=True)
class GitOutcome:
    """What git now holds: the first commit (None when the user's repository was reused) and the record."""

    branch: str | None
    commit: str | None
    template_commit: str
    initialized: bool


@dataclass(frozen=True)
class NewProject:
    """A project that now exists on disk."""

    path: Path
    task_kind: str
    spec_id: str
    template_version: str
    answers: dict[str, Any]
    files: list[str]
    replaced: list[str]
    git: GitOutcome | None
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "task_kind": self.task_kind,
            "spec_id": self.spec_id,
            "template_version": self.template_version,
            "answers": {key: value for key, value in self.answers.items() if key != "spec"},
            "files": self.files,
            "replaced": self.replaced,
            "git": vars(self.git) if self.git else None,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class PlannedFile:
    """One file `ccpt new --pretend` would write: created, overwritten, or already identical."""

    path: str
    action: Literal["create", "overwrite", "same"]
    size: int


def _answers(request: NewRequest) -> tuple[dict[str, Any], bool, list[str]]:
    """The spec's answers, whether to prompt for the rest, and notes for the user."""
    answers, notes = answers_for_spec(request.template, request.spec, request.project_name, request.data)
    open_questions = unanswered(request.template, answers)
    prompt = request.interactive and bool(open_questions) and sys.stdin.isatty() and sys.stdout.isatty()
    if request.interactive and open_questions and not prompt:
        notes.append(f"no terminal to ask on: {', '.join(open_questions)} took their defaults (see --data)")
    return answers, prompt, notes


def create_project(request: NewRequest) -> NewProject:
    """Render, record and place the project; on any failure or interrupt nothing is left behind."""
    answers, prompt, notes = _answers(request)
    if request.git:
        require_git()
    target = inspect_target(request.target, request.force)
    with staging_dir(request.target) as stage, sigterm_interrupts():
        render_dir = stage / "project"
        rendered = render_pristine(request.template, answers, render_dir, interactive=prompt)
        replaced = [] if target.fresh else replaced_files(render_dir, target.path, rendered.files)
        if request.git and request.template.answers_file not in rendered.files:
            notes.append(
                f"the template writes no {request.template.answers_file}, so ccpt update cannot follow it"
            )
        outcome = None
        if request.git and (target.fresh or not Git(target.path).is_repo_root()):
            outcome = _commit_in_new_repo(request, render_dir)
            move_into_place(render_dir, target)
        elif request.git:
            outcome = _record_in_existing_repo(request, render_dir, target)
        else:
            move_into_place(render_dir, target)
    return NewProject(
        path=request.target,
        task_kind=request.spec.task_kind,
        spec_id=request.spec.id,
        template_version=request.template.version,
        answers=rendered.answers,
        files=rendered.files,
        replaced=replaced,
        git=outcome,
        notes=notes,
    )


def _commit_in_new_repo(request: NewRequest, render_dir: Path) -> GitOutcome:
    """git init in the staged render, record it, and make the first commit there (so of its files only)."""
    git = Git(render_dir)
    git.init()
    template_commit = _record(request, git, render_dir, parent=None)
    git.set_branch(TEMPLATE_BRANCH, template_commit)
    commit = git.commit_all(
        f"New project from ccpt (spec {request.spec.id}, template {request.template.version})"
    )
    return GitOutcome(git.text("branch", "--show-current"), commit, template_commit, initialized=True)


def _record_in_existing_repo(request: NewRequest, render_dir: Path, target: Target) -> GitOutcome:
    """The target is already a repository: record the render there, place the files, commit nothing."""
    git = Git(target.path)
    previous = git.rev_parse(f"refs/heads/{TEMPLATE_BRANCH}")
    template_commit = _record(request, git, render_dir, parent=previous)
    move_into_place(render_dir, target)
    git.set_branch(TEMPLATE_BRANCH, template_commit)
    return GitOutcome(None, None, template_commit, initialized=False)


def _record(request: NewRequest, git: Git, render_dir: Path, parent: str | None) -> str:
    """The pristine-render commit, then the answers file stamped with it (so the record has no stamp)."""
    commit = record_render(git, render_dir, request.template.version, request.spec.id, parent)
    answers_path = render_dir / request.template.answers_file
    if answers_path.is_file():
        answers_path.write_bytes(stamped(answers_path.read_bytes(), commit))
    return commit


def pretend_project(request: NewRequest) -> tuple[list[PlannedFile], list[str]]:
    """What `create_project` would write (rendered in a throwaway folder), and its notes."""
    answers, prompt, notes = _answers(request)
    target = inspect_target(request.target, request.force)
    with tempfile.TemporaryDirectory(prefix="ccpt-pretend-") as scratch:
        render_dir = Path(scratch) / "project"
        rendered = render_pristine(request.template, answers, render_dir, interactive=prompt)
        replaced = set(replaced_files(render_dir, target.path, rendered.files)) if target.exists else set()
        planned = [
            PlannedFile(
                path,
                "overwrite" if path in replaced else "same" if (target.path / path).is_file() else "create",
                (render_dir / path).stat().st_size,
            )
            for path in rendered.files
        ]
    return planned, notes
