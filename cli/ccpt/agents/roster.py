"""The roster: the specialist roles, loaded from agent files and validated.

Roles come from three places, resolved the way Claude Code resolves subagents: a project's
`.claude/agents/*.md` first, then the user's `~/.claude/agents/*.md`, then the 15 built-in
files shipped in `agent_specs/`. A file with the same `name` as a built-in overrides it.
The team charter (`agent_specs/_team_charter.md`) is not a role: it is the shared preamble of
every role's prompt, and its team-map table says which team each role is on, what it owns in
a generated project and whom it hands work to.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccpt.agents.frontmatter import FrontMatterError, split_front_matter
from ccpt.errors import CcptError

CHARTER_FILE = "_team_charter.md"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MODEL_ALIASES = ("opus", "sonnet", "haiku", "inherit")
# Subcommands of `ccpt agent` that a role may not shadow.
RESERVED_NAMES = frozenset({"list", "show", "log", "help"})
# Front matter keys Claude Code understands; anything else is reported by `validate_claude_code`.
CLAUDE_CODE_KEYS = frozenset(
    {"name", "description", "tools", "disallowedTools", "model", "permissionMode", "skills", "hooks", "color"}
)
SOURCES = ("project", "user", "built-in")


@dataclass(frozen=True)
class TeamSeat:
    """A role's row in the charter's team map."""

    title: str
    team: str
    owns: str
    hands_to: tuple[str, ...]


@dataclass(frozen=True)
class Role:
    name: str  # lowercase-hyphen, as Claude Code wants it: network-architect
    title: str  # the CamelCase name people type and the CLI lists: NetworkArchitect
    description: str
    prompt: str
    model: str | None
    tools: tuple[str, ...]
    source: str
    path: Path
    team: str = ""
    owns: str = ""
    hands_to: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return normalize(self.name)

    @property
    def short_alias(self) -> str:
        """The first word of the name: `network` for network-architect."""
        return self.name.split("-")[0]


@dataclass
class Roster:
    roles: list[Role]
    charter: str
    overridden: dict[str, list[Path]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [role.title for role in self.roles]

    def find(self, query: str) -> Role | None:
        """The role `query` names, or None. Raises CcptError when it names several."""
        key = normalize(query)
        if not key:
            return None
        for role in self.roles:
            if role.key == key:
                return role
        by_alias = [role for role in self.roles if role.short_alias == key]
        if len(by_alias) == 1:
            return by_alias[0]
        by_prefix = [role for role in self.roles if role.key.startswith(key)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            options = ", ".join(role.title for role in by_prefix)
            raise CcptError(
                f"`{query}` could be any of: {options}", hint="type more of the name", exit_code=2
            )
        return None

    def get(self, query: str) -> Role:
        """The role `query` names; an unknown name gets 'did you mean' and the list."""
        role = self.find(query)
        if role is not None:
            return role
        keys = {normalize(r.title): r.title for r in self.roles}
        close = difflib.get_close_matches(normalize(query), list(keys), n=2, cutoff=0.75)
        guess = f". Did you mean {' or '.join(keys[k] for k in close)}?" if close else ""
        raise CcptError(
            f"no role named `{query}`{guess}",
            hint="roles: " + ", ".join(self.names()),
            exit_code=2,
        )


def normalize(name: str) -> str:
    """Case- and separator-insensitive key: NetworkArchitect, network-architect -> networkarchitect."""
    return "".join(char for char in name.lower() if char.isalnum())


def title_from_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def parse_team_map(charter: str) -> dict[str, TeamSeat]:
    """Rows of the charter's team-map table (`| role | team | owns | hands work to |`), by key."""
    seats: dict[str, TeamSeat] = {}
    for line in charter.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        title = cells[0]
        if len(cells) != 4 or not (title.isalpha() and title[0].isupper()) or cells[1] == "Team":
            continue
        _, team, owns, hands = cells
        targets = tuple(t.strip() for t in hands.split(",") if t.strip() and t.strip() not in {"—", "-"})
        seats[normalize(title)] = TeamSeat(title, team, "" if owns in {"—", "-"} else owns, targets)
    return seats


def _tools(value: Any, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise CcptError(
        f"{path}: field `tools`: expected a comma-separated string or a list of names", exit_code=2
    )


def read_role(path: Path, source: str, seats: dict[str, TeamSeat]) -> Role:
    """Parse and validate one agent file; errors name the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CcptError(f"{path}: cannot read: {exc}", exit_code=2) from exc
    try:
        data, body = split_front_matter(text)
    except FrontMatterError as exc:
        raise CcptError(
            f"{path}: {exc}", hint="see agent_specs/README.md for the format", exit_code=2
        ) from None

    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise CcptError(
            f"{path}: field `name` is missing", hint="add `name: my-role` to the front matter", exit_code=2
        )
    if not NAME_PATTERN.match(name):
        raise CcptError(
            f"{path}: field `name`: `{name}` must be lowercase words joined by hyphens",
            hint=f"for example `{re.sub(r'(?<!^)(?=[A-Z])', '-', name).lower().replace('_', '-')}`",
            exit_code=2,
        )
    if name in RESERVED_NAMES:
        raise CcptError(f"{path}: field `name`: `{name}` is a `ccpt agent` subcommand", exit_code=2)
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise CcptError(
            f"{path}: field `description` is missing or empty",
            hint="say when this role should be used",
            exit_code=2,
        )
    model = data.get("model")
    if model is not None and (
        not isinstance(model, str) or (model not in MODEL_ALIASES and not model.startswith("claude-"))
    ):
        raise CcptError(
            f"{path}: field `model`: `{model}` is not a model id (claude-...) or alias",
            hint="use one of: " + ", ".join(MODEL_ALIASES),
            exit_code=2,
        )
    if not body:
        raise CcptError(f"{path}: the body (the role's system prompt) is empty", exit_code=2)
    seat = seats.get(normalize(name))
    return Role(
        name=name,
        title=seat.title if seat else title_from_name(name),
        description=" ".join(description.split()),
        prompt=body,
        model=model,
        tools=_tools(data.get("tools"), path),
        source=source,
        path=path,
        team=seat.team if seat else "",
        owns=seat.owns if seat else "",
        hands_to=seat.hands_to if seat else (),
    )


def role_files(directory: Path, built_in: bool = False) -> list[Path]:
    """The agent files in `directory`: every `*.md`, less the README and `_`-files of the built-ins."""
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.md"))
    if built_in:
        files = [f for f in files if not f.name.startswith("_") and f.name.lower() != "readme.md"]
    return files


def project_agents_dir(start: Path) -> Path | None:
    """The nearest `.claude/agents` at or above `start`, not looking past the repository root."""
    for directory in (start, *start.parents):
        candidate = directory / ".claude" / "agents"
        if candidate.is_dir():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def load_roster(
    cwd: Path | None = None,
    user_dir: Path | None = None,
    built_in_dir: Path | None = None,
) -> Roster:
    """Built-in roles overlaid with the user's and then the project's agent files."""
    from ccpt.resources import agent_specs_dir

    built_in_dir = built_in_dir or agent_specs_dir()
    user_dir = user_dir if user_dir is not None else Path.home() / ".claude" / "agents"
    project_dir = project_agents_dir((cwd or Path.cwd()).resolve())
    charter_path = built_in_dir / CHARTER_FILE
    try:
        charter = charter_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CcptError(f"{charter_path}: the team charter is missing", hint="reinstall ccpt") from exc
    seats = parse_team_map(charter)

    layers: list[tuple[str, Iterable[Path]]] = [("built-in", role_files(built_in_dir, built_in=True))]
    if user_dir.resolve() != built_in_dir.resolve():
        layers.append(("user", role_files(user_dir)))
    if project_dir is not None and project_dir.resolve() not in {user_dir.resolve(), built_in_dir.resolve()}:
        layers.append(("project", role_files(project_dir)))

    roles: dict[str, Role] = {}
    overridden: dict[str, list[Path]] = {}
    for source, paths in layers:
        seen_here: dict[str, Path] = {}
        for path in paths:
            role = read_role(path, source, seats)
            if role.key in seen_here:
                raise CcptError(
                    f"{path}: field `name`: `{role.name}` is also defined in {seen_here[role.key]}",
                    hint="give each agent file its own name",
                    exit_code=2,
                )
            seen_here[role.key] = path
            if role.key in roles:
                overridden.setdefault(role.title, []).append(roles[role.key].path)
            roles[role.key] = role
    order = {key: index for index, key in enumerate(seats)}
    ranked = sorted(roles.values(), key=lambda role: (order.get(role.key, len(order)), role.name))
    return Roster(roles=ranked, charter=charter, overridden=overridden)


def validate_claude_code(path: Path) -> list[str]:
    """Problems that would stop Claude Code from using `path` as a subagent (empty: none)."""
    problems = []
    try:
        data, _ = split_front_matter(path.read_text(encoding="utf-8"))
    except FrontMatterError as exc:
        return [str(exc)]
    unknown = sorted(set(data) - CLAUDE_CODE_KEYS)
    if unknown:
        problems.append(f"keys Claude Code does not know: {', '.join(unknown)}")
    try:
        read_role(path, "check", {})
    except CcptError as exc:
        problems.append(exc.message)
    return problems
