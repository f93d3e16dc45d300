"""`ccpt doctor`: the checks a user needs, as a table and as JSON, never leaking a secret."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_ccpt


def doctor_json(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    result = run_ccpt("doctor", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return {check["name"]: check for check in json.loads(result.stdout)}


def test_json_reports_torch_libraries_and_tools(tmp_path: Path) -> None:
    import torch

    checks = doctor_json(tmp_path)
    assert checks["torch"] == {"name": "torch", "status": "OK", "detail": torch.__version__, "fix": ""}
    assert checks["cuda"]["status"] in {"OK", "WARN"}
    assert checks["transformers"]["status"] == "OK"
    for name in ("python", "ccpt", "datasets", "anthropic key", "aws", "ssh", "rsync", "git"):
        assert checks[name]["status"] in {"OK", "WARN", "MISSING"}, name


def test_missing_key_says_how_to_set_it(tmp_path: Path) -> None:
    checks = doctor_json(tmp_path)
    assert checks["anthropic key"]["status"] == "MISSING"
    assert "ANTHROPIC_API_KEY" in checks["anthropic key"]["fix"]


def test_key_and_aws_secret_are_masked(tmp_path: Path) -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-api03-very-secret-XYZW",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID0000",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-never-shown",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    result = run_ccpt("doctor", "--json", cwd=tmp_path, env=env)
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["anthropic key"] == {
        "name": "anthropic key",
        "status": "OK",
        "detail": "ANTHROPIC_API_KEY ****XYZW",
        "fix": "",
    }
    assert checks["anthropic endpoint"]["detail"] == "http://127.0.0.1:9"
    assert checks["aws"]["status"] == "OK" and "eu-west-1" in checks["aws"]["detail"]
    for secret in ("very-secret", "aws-secret-never-shown", "AKIAEXAMPLEKEYID0000"):
        assert secret not in result.stdout


def test_table_output_shows_a_row_per_check(tmp_path: Path) -> None:
    result = run_ccpt("doctor", cwd=tmp_path)
    assert result.returncode == 0
    for name in ("python", "torch", "anthropic key", "rsync"):
        assert name in result.stdout


def test_an_aws_profile_no_config_has_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    result = run_ccpt("doctor", "--json", cwd=tmp_path, env={"AWS_PROFILE": "nobody-has-this-profile"})
    assert result.returncode == 0, result.stderr
    aws = next(check for check in json.loads(result.stdout) if check["name"] == "aws")
    assert aws["status"] == "WARN" and "nobody-has-this-profile" in aws["detail"]


def test_in_80_columns_each_fix_sits_under_its_detail_unbroken(tmp_path: Path) -> None:
    result = run_ccpt("doctor", cwd=tmp_path, env={"COLUMNS": "80", "ANTHROPIC_API_KEY": ""})
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    key_row = next(i for i, line in enumerate(lines) if "anthropic key" in line)
    assert "ANTHROPIC_API_KEY is not set" in lines[key_row]
    assert "fix: export ANTHROPIC_API_KEY=..." in lines[key_row + 1]  # the command in one piece
