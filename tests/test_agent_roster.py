"""The roster: the 15 role files, their validity as Claude Code subagents, name resolution and
the project/user overrides, as `ccpt agent list/show` present them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ccpt.agents.frontmatter import split_front_matter
from ccpt.agents.prompt import estimate_tokens
from ccpt.agents.roster import NAME_PATTERN, load_roster, role_files, validate_claude_code
from ccpt.errors import CcptError
from ccpt.resources import agent_specs_dir
from tests.conftest import run_ccpt

SPECS = agent_specs_dir()
MISSION_ROLES = {
    "Supervisor": ("Strategy", "", {"DatasetCurator", "ModelArchitect", "CloudEngineer"}),
    "DomainExpert": ("Strategy", "", {"DatasetCurator", "MetricsArchitect"}),
    "DatasetCurator": ("Data Pipeline", "src/data.py (shared)", {"DataEngineer"}),
    "DataEngineer": ("Data Pipeline", "src/data.py", {"TransformSpecialist", "TrainingOrchestrator"}),
    "TransformSpecialist": ("Data Pipeline", "src/data.py (shared)", set()),
    "ModelArchitect": ("Model Architecture", "src/network.py (shared)", {"NetworkArchitect"}),
    "NetworkArchitect": ("Model Architecture", "src/network.py", {"TrainingOrchestrator"}),
    "TrainingOrchestrator": (
        "Training & Evaluation",
        "src/trainer.py",
        {"MetricsArchitect", "RunnerOrchestrator"},
    ),
    "MetricsArchitect": ("Training & Evaluation", "src/trainer.py (shared)", set()),
    "RunnerOrchestrator": ("Training & Evaluation", "src/runner.py", {"ComputeOrchestrator"}),
    "CloudEngineer": ("Infrastructure", "src/server.py", {"ComputeOrchestrator", "InterfaceDesigner"}),
    "ComputeOrchestrator": ("Infrastructure", "src/compute.py", set()),
    "LocalStackEmulator": ("Infrastructure", "", {"CloudEngineer"}),
    "TestArchitect": (
        "Quality & Interface",
        "tests/",
        {"DataEngineer", "NetworkArchitect", "TrainingOrchestrator", "CloudEngineer"},
    ),
    "InterfaceDesigner": ("Quality & Interface", "apps/", set()),
}


def write_agent(
    directory: Path, name: str, description: str = "Use for tests.", body: str = "You test."
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(f"---\nname: {name}\ndescription: {description}\nmodel: haiku\n---\n{body}\n")
    return path


@pytest.mark.parametrize("path", role_files(SPECS, built_in=True), ids=lambda p: p.stem)
def test_every_agent_file_is_a_valid_claude_code_subagent(path: Path) -> None:
    assert validate_claude_code(path) == []
    front, body = split_front_matter(path.read_text())
    # Claude Code parses the front matter as YAML: the fast reader must agree with it exactly.
    block = path.read_text().split("---")[1]
    assert yaml.safe_load(block) == front
    assert NAME_PATTERN.match(front["name"]) and front["name"] == path.stem
    assert front["model"] in {"opus", "sonnet", "haiku", "inherit"}
    assert front["description"].startswith("Use ")
    assert len(body.split()) > 350, "a role prompt should be substantive"
    for section in ("## Expertise", "## What you own", "## Hand-offs", "## A good answer from you"):
        assert section in body, section


def test_the_roster_is_the_fifteen_roles_of_the_team_map() -> None:
    roster = load_roster(user_dir=Path("/nonexistent"))
    assert {role.title: (role.team, role.owns, set(role.hands_to)) for role in roster.roles} == MISSION_ROLES
    assert roster.names()[0] == "Supervisor"
    assert all(role.source == "built-in" for role in roster.roles)


def test_every_role_states_the_team_rules_it_works_under() -> None:
    roster = load_roster(user_dir=Path("/nonexistent"))
    charter = roster.charter
    for phrase in ("EC2, S3, SageMaker and Bedrock", "Tests first", "Penalties", "Rewards", "Hand-off →"):
        assert phrase in charter, phrase
    for role in roster.roles:
        handoffs = role.prompt.split("## Hand-offs")[1].split("##")[0]
        for target in role.hands_to:
            assert target in handoffs, (role.title, target)
        if role.owns:
            assert role.owns.split(" ")[0] in role.prompt, role.title


def test_charter_plus_any_role_reaches_the_cache_floor_of_its_model() -> None:
    from ccpt.agents.consult import choose_model
    from ccpt.agents.models import model_card

    roster = load_roster(user_dir=Path("/nonexistent"))
    for role in roster.roles:
        model = choose_model(None, role, "claude-sonnet-5-5")
        prefix = estimate_tokens(roster.charter) + estimate_tokens(role.prompt)
        assert prefix >= model_card(model).min_cacheable_tokens, role.title
    # The charter alone is cached too, so switching roles still reads it from the cache.
    assert estimate_tokens(roster.charter) >= model_card("claude-sonnet-5-5").min_cacheable_tokens


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("NetworkArchitect", "NetworkArchitect"),
        ("network-architect", "NetworkArchitect"),
        ("network", "NetworkArchitect"),
        ("NETWORKARCHITECT", "NetworkArchitect"),
        ("data", "DataEngineer"),
        ("dataset", "DatasetCurator"),
        ("localstack", "LocalStackEmulator"),
        ("local-stack-emulator", "LocalStackEmulator"),
        ("TestArchitect", "TestArchitect"),
    ],
)
def test_names_resolve_case_and_separator_insensitively(query: str, title: str) -> None:
    assert load_roster(user_dir=Path("/nonexistent")).get(query).title == title


def test_an_ambiguous_prefix_names_the_candidates() -> None:
    with pytest.raises(CcptError, match="ModelArchitect, MetricsArchitect"):
        load_roster(user_dir=Path("/nonexistent")).get("m")


def test_unknown_role_gets_did_you_mean_and_the_list(tmp_path: Path) -> None:
    result = run_ccpt("agent", "NetworkArchitekt", "hi", cwd=tmp_path, env={"HOME": str(tmp_path)}, input="")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Did you mean NetworkArchitect?" in lines[0]
    assert "Supervisor" in lines[0] and "InterfaceDesigner" in lines[0]


def test_agent_list_shows_the_fifteen_roles(tmp_path: Path) -> None:
    result = run_ccpt("agent", "list", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    for title in MISSION_ROLES:
        assert title in result.stdout
    assert "15 roles" in result.stdout
    assert "claude-opus-5-5" in result.stdout and "claude-sonnet-5-5" in result.stdout
    assert "built-in" in result.stdout


@pytest.mark.parametrize("width", [60, 80, 100])
def test_agent_list_keeps_the_descriptions_readable_in_a_narrow_terminal(tmp_path: Path, width: int) -> None:
    """Columns that cannot wrap give way (team, source, model) before the description shrinks."""
    env = {"HOME": str(tmp_path), "COLUMNS": str(width)}
    result = run_ccpt("agent", "list", "--json", cwd=tmp_path, env=env)
    roles = json.loads(result.stdout)
    first_words = {role["name"]: " ".join(role["description"].split()[:3]) for role in roles}
    table = run_ccpt("agent", "list", cwd=tmp_path, env=env).stdout
    assert max(len(line) for line in table.splitlines()) <= width
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") >= 3}
    for title, words in first_words.items():
        assert words in rows[title], (title, rows.get(title))


def test_agent_help_lists_every_role_as_a_subcommand(tmp_path: Path) -> None:
    result = run_ccpt("agent", "--help", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 0
    for title in MISSION_ROLES:
        assert f" {title} " in result.stdout, title
    role_help = run_ccpt("agent", "NetworkArchitect", "--help", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert "--dry-run" in role_help.stdout and role_help.stdout.count("Owns src/network.py") == 1
    assert 'ccpt agent network -f src/network.py "review this"' in role_help.stdout
    # A role that owns no file gets an example with a file every project has.
    supervisor = run_ccpt("agent", "Supervisor", "--help", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert 'ccpt agent supervisor -f specs/task.yaml "review this"' in supervisor.stdout


def test_shell_completion_offers_the_roles(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "_CCPT_COMPLETE": "complete_bash",
        "COMP_WORDS": "ccpt agent Net",
        "COMP_CWORD": "2",
    }
    result = run_ccpt(cwd=tmp_path, env=env)
    assert "NetworkArchitect" in result.stdout, result.stdout + result.stderr


def test_agent_show_renders_the_role_card_and_prompt(tmp_path: Path) -> None:
    result = run_ccpt("agent", "show", "network", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "NetworkArchitect" in result.stdout
    assert "network-architect" in result.stdout
    assert "src/network.py" in result.stdout and "TrainingOrchestrator" in result.stdout
    assert "A good answer from you" in result.stdout
    as_json = json.loads(run_ccpt("agent", "show", "network", "--json", cwd=tmp_path).stdout)
    assert as_json["name"] == "NetworkArchitect" and as_json["prompt"].startswith("# NetworkArchitect")


def test_project_agents_override_user_agents_which_override_built_ins(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    write_agent(home / ".claude" / "agents", "network-architect", body="USER VERSION")
    write_agent(home / ".claude" / "agents", "latency-auditor", description="Use to audit p95 latency.")
    write_agent(project / ".claude" / "agents", "network-architect", body="PROJECT VERSION")
    (project / "src").mkdir()

    roster = load_roster(cwd=project / "src", user_dir=home / ".claude" / "agents")
    network = roster.get("network")
    assert network.prompt == "PROJECT VERSION" and network.source == "project"
    assert roster.get("LatencyAuditor").source == "user"
    assert len(roster.roles) == 16

    result = run_ccpt("agent", "list", "--json", cwd=project / "src", env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    sources = {row["name"]: row["source"] for row in json.loads(result.stdout)}
    assert sources["NetworkArchitect"] == "project"
    assert sources["LatencyAuditor"] == "user"
    assert sources["Supervisor"] == "built-in"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("---\ndescription: Use for x.\n---\nbody\n", "field `name` is missing"),
        ("---\nname: NetworkGuru\ndescription: Use for x.\n---\nbody\n", "field `name`"),
        ("---\nname: guru\n---\nbody\n", "field `description`"),
        ("---\nname: guru\ndescription: Use for x.\nmodel: gpt-9\n---\nbody\n", "field `model`"),
        ("---\nname: guru\ndescription: Use for x.\n---\n", "body"),
        ("name: guru\n", "no front matter"),
        ("---\nname: guru\ndescription: [unclosed\n---\nbody\n", "not valid YAML"),
    ],
)
def test_an_invalid_agent_file_is_one_error_line_naming_file_and_field(
    tmp_path: Path, content: str, field: str
) -> None:
    agents = tmp_path / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "guru.md").write_text(content)
    result = run_ccpt("agent", "list", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(agents / "guru.md") in lines[0] and field in lines[0]
    assert "Traceback" not in result.stderr


def test_yaml_features_in_user_files_are_read_by_the_yaml_fallback(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: >\n  Use to review code: style,\n  tests and docs.\n"
        "tools: [Read, Grep]\nmodel: 'sonnet'\n---\nYou review.\n"
    )
    role = load_roster(cwd=tmp_path, user_dir=agents).get("reviewer")
    assert role.description == "Use to review code: style, tests and docs."
    assert role.tools == ("Read", "Grep") and role.model == "sonnet"
