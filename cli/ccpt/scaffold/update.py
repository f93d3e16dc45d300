"""`ccpt update`: a three-way merge of template changes into a project, keeping the user's edits.

For every path, three versions meet: the base (the pristine render the project was made from,
a commit on `ccpt-template`), the new render (the current template with the recorded answers),
and the user's file in the working tree. What the template did (base -> new) is applied to what
the user has:

    template kept it          -> unchanged (yours stays, edited or not)
    template changed it       -> updated (you never touched it), merged / conflict (you did too,
                                 `git merge-file`, conflicts marked inline), kept-deleted (you deleted it)
    template added it         -> added (or merged / conflict when you made the same path)
    template dropped it       -> removed (you never touched it) or kept (you edited it)

The plan is computed without writing anything; applying it writes every file or none, then makes
the new render the next base. The answers file is ccpt's own record and is always rewritten.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ccpt.errors import CcptError
from ccpt.scaffold.answers import check_data
from ccpt.scaffold.git import Git, blob_sha, merge_texts
from ccpt.scaffold.interrupts import interrupts_held
from ccpt.scaffold.records import TEMPLATE_BRANCH, read_records, record_render, stamped, unstamped
from ccpt.scaffold.render import render_pristine
from ccpt.scaffold.template import ProjectTemplate


class Status(str, Enum):
    """What an update does to one file (the plan table's vocabulary)."""

    UNCHANGED = "unchanged"
    UPDATED = "updated"
    MERGED = "merged"
    CONFLICT = "conflict"
    ADDED = "added"
    KEPT_DELETED = "kept-deleted"
    REMOVED = "removed"
    KEPT = "kept"


WRITES = {Status.UPDATED, Status.MERGED, Status.CONFLICT, Status.ADDED}


@dataclass(frozen=True)
class FileChange:
    """One path of the plan: its status, why, and the bytes to write (None: leave the file alone)."""

    path: str
    status: Status
    detail: str = ""
    content: bytes | None = None
    mode: int = 0o644

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "status": self.status.value, "detail": self.detail}


@dataclass
class UpdatePlan:
    """Everything `apply_update` needs, computed without writing: changes, versions, the new render."""

    project: Path
    base_commit: str
    from_version: str
    to_version: str
    changes: list[FileChange]
    render_dir: Path
    answers_file: str
    spec_id: str
    template_changed: bool
    notes: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """The template renders exactly the base again: there is nothing to bring in."""
        return not self.template_changed

    def with_status(self, *statuses: Status) -> list[FileChange]:
        return [change for change in self.changes if change.status in statuses]

    def counts(self) -> dict[str, int]:
        return {status.value: len(self.with_status(status)) for status in Status}

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": str(self.project),
            "up_to_date": self.up_to_date,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "counts": self.counts(),
            "files": [change.to_dict() for change in self.changes if change.status is not Status.UNCHANGED],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class UpdateResult:
    plan: UpdatePlan
    template_commit: str
    written: list[str]
    removed: list[str]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def check_versions(recorded: str, template: ProjectTemplate, to_version: str | None) -> None:
    """Refuse a `--to` this ccpt does not ship, and a project rendered by a newer ccpt."""
    if to_version and to_version != template.version:
        raise CcptError(
            f"template version {to_version} is not available: this ccpt ships template {template.version}",
            hint=f"pip install 'ccpt=={to_version}', then run ccpt update --to {to_version}",
        )
    if _version_key(recorded) > _version_key(template.version):
        raise CcptError(
            f"the project was rendered by ccpt {recorded}, newer than this ccpt ({template.version})",
            hint="upgrade ccpt (pip install -U ccpt)",
        )


@contextmanager
def planned_update(
    project: Path,
    template: ProjectTemplate,
    data: Mapping[str, Any] | None = None,
    to_version: str | None = None,
) -> Iterator[UpdatePlan]:
    """Render the template with the recorded answers (plus `data`) and plan the merge; writes nothing
    in the project. The plan's render folder lives until the block ends."""
    project = project.resolve()
    records = read_records(project, template)
    check_versions(records.version, template, to_version)
    data = dict(data or {})
    check_data(template, data)
    recorded = {key: value for key, value in records.answers.items() if key in template.questions}
    answers = {**recorded, **data, "ccpt_version": template.version}
    notes = [
        f"new question {name!r} takes its default; set it with --data {name}=..."
        for name, question in template.questions.items()
        if question.asked and name not in answers
    ]
    answers["spec"], newly_checked = _spec_with_new_thresholds(answers.get("spec"))
    notes += [f"now a machine-checked gate of specs/task.yaml: {text}" for text in newly_checked]
    with tempfile.TemporaryDirectory(prefix="ccpt-update-") as scratch:
        render_dir = Path(scratch) / "render"
        render_pristine(template, answers, render_dir)
        git = Git(project)
        labels = ("yours", f"template {records.version}", f"template {template.version}")
        changes, template_changed = _plan_files(
            git, render_dir, records.render_commit, template.answers_file, labels
        )
        yield UpdatePlan(
            project=project,
            base_commit=records.render_commit,
            from_version=records.version,
            to_version=template.version,
            changes=changes,
            render_dir=render_dir,
            answers_file=template.answers_file,
            spec_id=str(answers.get("spec_id", "")),
            template_changed=template_changed,
            notes=notes,
        )


def _spec_with_new_thresholds(spec: Any) -> tuple[Any, list[str]]:
    """The recorded spec with thresholds this ccpt reads in items an older one could not (the
    texts of those items); a spec in a template's own shape is left as recorded."""
    from ccpt.specs import TaskSpec
    from ccpt.specs.thresholds import read_missing_thresholds

    if not isinstance(spec, Mapping) or not spec:
        return spec, []
    try:
        read, found = read_missing_thresholds(TaskSpec.from_dict(spec))
    except (KeyError, TypeError, ValueError):
        return spec, []
    return (read.to_dict() if found else spec), found


def _plan_files(
    git: Git, render_dir: Path, base_commit: str, answers_file: str, labels: tuple[str, str, str]
) -> tuple[list[FileChange], bool]:
    """Every path of the base and the new render with its status; and whether the template changed at all."""
    project = git.path
    base_tree = git.ls_tree(base_commit)
    new_files = git.listed_files(render_dir)
    new_content = {path: (render_dir / path).read_bytes() for path in new_files}
    new_shas = {path: blob_sha(data) for path, data in new_content.items()}
    base_shas = {path: entry.sha for path, entry in base_tree.items()}
    changed = [
        path for path in sorted(set(base_shas) | set(new_shas)) if base_shas.get(path) != new_shas.get(path)
    ]
    base_content = git.read_blobs(base_shas[path] for path in changed if path in base_shas)
    changes = []
    for path in sorted(set(base_shas) | set(new_shas)):
        mode = (render_dir / path).stat().st_mode & 0o777 if path in new_content else 0o644
        if path == answers_file:
            changes.append(_answers_change(project, path, new_content.get(path), mode))
            continue
        if path not in changed:
            changes.append(FileChange(path, Status.UNCHANGED))
            continue
        base = base_content.get(base_shas[path]) if path in base_shas else None
        changes.append(_classify(project, path, base, new_content.get(path), labels, mode))
    return changes, bool(changed)


def _answers_change(project: Path, path: str, new: bytes | None, mode: int) -> FileChange:
    """ccpt's own record: rewritten from the new render (stamped at apply time), never merged."""
    ours_path = project / path
    ours = unstamped(ours_path.read_bytes()) if ours_path.is_file() else None
    status = Status.UNCHANGED if ours == new else Status.UPDATED
    return FileChange(path, status, "ccpt's record of the answers", new, mode)


def _classify(
    project: Path, path: str, base: bytes | None, new: bytes | None, labels: tuple[str, str, str], mode: int
) -> FileChange:
    """The status of one path the template changed, given what the user has there."""
    blocker = _blocking_path(project, path)
    if blocker:
        return FileChange(path, Status.CONFLICT, f"{blocker} of yours is in the way; left as is")
    ours_path = project / path
    ours = ours_path.read_bytes() if ours_path.is_file() else None
    if new is None:  # the template dropped the file
        if ours is None:
            return FileChange(path, Status.UNCHANGED)
        if ours == base:
            return FileChange(path, Status.REMOVED, "the template no longer has it")
        return FileChange(path, Status.KEPT, "the template dropped it; kept for your edits")
    if ours is None:
        if base is None:
            return FileChange(path, Status.ADDED, "new in the template", new, mode)
        return FileChange(path, Status.KEPT_DELETED, "you deleted it; the template changed it")
    if ours == new:
        return FileChange(path, Status.UNCHANGED)
    if ours == base:
        return FileChange(path, Status.UPDATED, "you never changed it", new, mode)
    if any(b"\0" in data for data in (ours, base or b"", new)):
        return FileChange(
            path,
            Status.CONFLICT,
            f"binary; yours kept, the template's is `git show {TEMPLATE_BRANCH}:{path}`",
        )
    merged, conflicts = merge_texts(ours, base or b"", new, labels)
    if conflicts:
        detail = f"{conflicts} conflict{'s' if conflicts > 1 else ''} marked inline"
        if base is None:
            detail += " (you and the template both made it)"
        return FileChange(path, Status.CONFLICT, detail, merged, mode)
    return FileChange(path, Status.MERGED, "your edits and the template's, merged", merged, mode)


def _blocking_path(project: Path, path: str) -> str | None:
    """A folder at `path`, or a file where one of its parent folders should be."""
    if (project / path).is_dir():
        return "a folder"
    for parent in Path(path).parents:
        if str(parent) != "." and (project / parent).exists() and not (project / parent).is_dir():
            return f"the file {parent.as_posix()}"
    return None


def ensure_clean(project: Path) -> None:
    """Refuse a working tree with uncommitted changes, naming them."""
    dirty = Git(project).dirty_paths()
    if dirty:
        shown = ", ".join(dirty[:6]) + (f" and {len(dirty) - 6} more" if len(dirty) > 6 else "")
        raise CcptError(
            f"uncommitted changes in {project}: {shown}",
            hint="commit or stash them first, so the update can be reviewed (and undone) on its own",
        )


def apply_update(plan: UpdatePlan) -> UpdateResult:
    """Write the plan: every file or none (the originals are restored on any error), then record
    the new render as the next base."""
    ensure_clean(plan.project)
    git = Git(plan.project)
    template_commit = record_render(
        git, plan.render_dir, plan.to_version, plan.spec_id, parent=plan.base_commit
    )
    writes = {
        change.path: (change.content, change.mode)
        for change in plan.changes
        if change.content is not None and change.status in WRITES
    }
    record = next((change for change in plan.changes if change.path == plan.answers_file), None)
    if record is not None and record.content is not None:  # always: it names the new base
        writes[record.path] = (stamped(record.content, template_commit), record.mode)
    removals = [change.path for change in plan.with_status(Status.REMOVED)]
    originals = {path: _read_or_none(plan.project / path) for path in [*writes, *removals]}
    with interrupts_held():
        try:
            for path, (content, mode) in writes.items():
                write_file(plan.project / path, content, mode)
            for path in removals:
                (plan.project / path).unlink()
                _prune_empty_parents(plan.project, path)
            git.set_branch(TEMPLATE_BRANCH, template_commit)
        except BaseException:
            _restore(plan.project, originals)
            raise
    return UpdateResult(plan, template_commit, sorted(writes), removals)


def write_file(path: Path, content: bytes, mode: int) -> None:
    """Replace `path` with `content` atomically (a temporary file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_or_none(path: Path) -> tuple[bytes, int] | None:
    return (path.read_bytes(), path.stat().st_mode & 0o777) if path.is_file() else None


def _restore(project: Path, originals: Mapping[str, tuple[bytes, int] | None]) -> None:
    """Put every touched path back as it was before the update started."""
    for path, original in originals.items():
        target = project / path
        if original is None:
            target.unlink(missing_ok=True)
            _prune_empty_parents(project, path)
        else:
            write_file(target, *original)


def _prune_empty_parents(project: Path, path: str) -> None:
    for parent in Path(path).parents:
        if str(parent) == ".":
            return
        try:
            (project / parent).rmdir()
        except OSError:
            return
