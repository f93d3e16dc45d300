"""The HTTP API over real HTTP, and `runner.py predict`: prompts in, continuations out."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import run_cli, saved_step


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "causal-lm",
        "run": trained_run.name,
        "step": saved_step(trained_run),
        "chat": False,  # trained on plain text: it continues a prompt rather than answering one
        "temperature": 0.8,  # and samples it by default
    }


def test_a_prompt_gets_a_continuation_of_the_asked_length(server_url: str) -> None:
    request = {"prompt": "def main(", "max_new_tokens": 24, "temperature": 0.0}
    response = httpx.post(f"{server_url}/predict", json=request, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prompt"] == "def main(" and body["tokens"] == 24
    assert isinstance(body["completion"], str) and body["completion"]
    again = httpx.post(f"{server_url}/predict", json=request, timeout=30).json()
    assert again["completion"] == body["completion"]  # temperature 0 is deterministic


def test_an_empty_prompt_still_gets_text(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"prompt": "", "max_new_tokens": 8}, timeout=30)
    assert response.status_code == 200 and response.json()["tokens"] == 8


def test_out_of_range_settings_get_422_naming_the_field(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"prompt": "x", "max_new_tokens": 0})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("max_new_tokens:")


def test_malformed_json_and_a_missing_prompt_get_422(server_url: str) -> None:
    broken = httpx.post(
        f"{server_url}/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]
    missing = httpx.post(f"{server_url}/predict", json={"max_new_tokens": 4})
    assert missing.status_code == 422 and missing.json()["detail"].startswith("prompt:")


def test_runner_predict_prints_the_prompt_and_its_continuation(trained_run: Path) -> None:
    result = run_cli("predict", "--run", str(trained_run), "import os", "--max-new-tokens", "16")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("import os")


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--temperature", "-1", "-1 is out of range: give 0 to 5"),
        ("--max-new-tokens", "0", "0 is out of range: give 1 to 1024"),
        ("--top-k", "-3", "-3 is out of range: give 0 or more"),
        ("--max-new-tokens", "many", "invalid int value: 'many'"),
    ],
)
def test_runner_predict_refuses_settings_the_api_would_refuse(
    option: str, value: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import runner

    with pytest.raises(SystemExit) as refused:  # argparse's usage, its error line, exit status 2
        runner.build_parser().parse_args(["predict", "import os", option, value])
    assert refused.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"argument {option}: {reason}")
