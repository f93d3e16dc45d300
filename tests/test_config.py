"""Settings precedence: defaults < config file < environment < flags, each with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccpt.config import resolve_settings
from ccpt.errors import CcptError
from tests.conftest import run_ccpt


def write_pyproject(directory: Path, table: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(f'[project]\nname = "x"\n\n[tool.ccpt]\n{table}\n')
    return path


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, env={})
    assert settings.max_tokens == 4096
    assert settings.resolved["max_tokens"].source == "default"
    assert settings.config_file is None


def test_pyproject_beats_defaults_and_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    config = write_pyproject(tmp_path, "max_tokens = 1000\nrun_dir = 'out'")
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    settings = resolve_settings(cwd=nested, env={})
    assert settings.max_tokens == 1000
    assert settings.run_dir == "out"
    assert settings.resolved["max_tokens"].source == str(config)
    assert settings.project_root == tmp_path


def test_ccpt_toml_is_used_and_pyproject_without_table_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "ccpt.toml").write_text("model = 'claude-haiku-5-5'\n")
    inner = tmp_path / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname='pkg'\n")
    settings = resolve_settings(cwd=inner, env={})
    assert settings.model == "claude-haiku-5-5"
    assert settings.config_file == tmp_path / "ccpt.toml"


def test_environment_beats_file_and_flags_beat_environment(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "max_tokens = 1000")
    env = {"CCPT_MAX_TOKENS": "2000"}
    from_env = resolve_settings(cwd=tmp_path, env=env)
    assert (from_env.max_tokens, from_env.resolved["max_tokens"].source) == (2000, "env CCPT_MAX_TOKENS")
    from_flag = resolve_settings(cwd=tmp_path, env=env, flags={"max_tokens": 3000})
    assert (from_flag.max_tokens, from_flag.resolved["max_tokens"].source) == (3000, "flag")


def test_sdk_variables_are_read_and_the_key_is_masked(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, env={"ANTHROPIC_API_KEY": "sk-ant-secret-value-1234"})
    resolved = settings.resolved["anthropic_api_key"]
    assert resolved.value == "sk-ant-secret-value-1234"
    assert resolved.display_value() == "****1234"
    assert resolved.source == "env ANTHROPIC_API_KEY"


def test_an_api_key_in_a_config_file_is_refused(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "anthropic_api_key = 'sk-ant-oops'")
    with pytest.raises(CcptError, match="must not be stored in a file"):
        resolve_settings(cwd=tmp_path, env={})


def test_unknown_key_and_bad_value_name_the_file_and_the_setting(tmp_path: Path) -> None:
    config = write_pyproject(tmp_path, "modle = 'x'")
    with pytest.raises(CcptError, match="unknown setting `modle`") as excinfo:
        resolve_settings(cwd=tmp_path, env={})
    assert str(config) in excinfo.value.message
    with pytest.raises(CcptError, match="bad value for `max_tokens`"):
        resolve_settings(cwd=tmp_path / "..", env={"CCPT_MAX_TOKENS": "lots"})


def test_config_show_names_every_source_and_masks_secrets(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "run_dir = 'experiments'")
    result = run_ccpt(
        "config",
        "show",
        "--json",
        cwd=tmp_path,
        env={"CCPT_MODEL": "claude-opus-5-5", "ANTHROPIC_API_KEY": "sk-ant-abcdefgh-9876"},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["settings"]
    assert data["run_dir"] == {"value": "experiments", "source": str(tmp_path / "pyproject.toml")}
    assert data["model"] == {"value": "claude-opus-5-5", "source": "env CCPT_MODEL"}
    assert data["anthropic_api_key"]["value"] == "****9876"
    assert "abcdefgh" not in result.stdout
    table = run_ccpt("config", "show", cwd=tmp_path)
    assert "experiments" in table.stdout and "pyproject.toml" in table.stdout


def test_config_show_says_what_applies_to_an_unset_setting(tmp_path: Path) -> None:
    home = tmp_path / "ccpt-home"
    env = {"CCPT_HOME": str(home), "ANTHROPIC_API_KEY": "", "AWS_DEFAULT_REGION": ""}
    rows = {}
    for line in run_ccpt("config", "show", cwd=tmp_path, env=env).stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0]:
            rows[cells[0]] = cells
    assert rows["home"][1] == str(home) and rows["home"][2] == "env CCPT_HOME"
    assert rows["anthropic_api_key"][1] == "unset: needed by `ccpt agent` and `ccpt ask`"
    assert rows["anthropic_api_key"][3] == "CCPT_ANTHROPIC_API_KEY, ANTHROPIC_API_KEY"
    assert rows["region"][1].startswith("unset: boto3 decides")
    unset_home = run_ccpt("config", "show", cwd=tmp_path, env={"CCPT_HOME": ""}).stdout
    assert "unset: /" in unset_home  # the folder the history goes to, in full
