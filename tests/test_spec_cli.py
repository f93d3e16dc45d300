"""`ccpt spec ...` as a user runs it: real subprocesses, real files, exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_ccpt

TEMPLATE = """\
## Fine-tune with LoRA on a budget

**Story Points:** 5

**User Story:**
As a ML engineer with one GPU
I want a 7B model adapted with LoRA
So that answers follow our tone

**Prompt:**
@agent-ModelArchitect Configure LoRA on the attention projections.

### CONSTRAINTS
- Memory budget: [GPU memory] GB
- Train only [0.1-1%] of parameters

### REWARDS
- Eval loss < 1.8 on held-out conversations

### PENALTIES
- Overfitting (>5% train-val gap)

### GOAL STATE
- Adapter weights and an evaluation report

### ACCEPTANCE CRITERIA
- Given held-out conversations, when the evaluation runs, then eval loss is reported
"""

VAGUE = """\
id: vague
title: Make the model better
task_kind: image-classification
points: 3
story: {as_a: engineer, i_want: a better model, so_that: users are happier}
rewards: [Higher quality predictions]
"""


def test_list_shows_the_library_as_a_table_and_as_json() -> None:
    table = run_ccpt("spec", "list")
    assert table.returncode == 0, table.stderr
    assert "image-classification" in table.stdout and "object-detection" in table.stdout
    listed = json.loads(run_ccpt("spec", "list", "--json").stdout)
    assert len(listed) >= 16
    assert {"image-classification", "text-classification", "causal-lm"} <= {s["id"] for s in listed}


@pytest.mark.parametrize("width", [70, 80, 120])
def test_list_fits_a_narrow_terminal_and_keeps_each_title_whole_words(width: int) -> None:
    listed = json.loads(run_ccpt("spec", "list", "--json").stdout)
    table = run_ccpt("spec", "list", env={"COLUMNS": str(width)}).stdout
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= width
    starts = {line.split()[0]: line for line in lines if line.startswith("  ") and line.split()}
    for spec in listed:
        assert spec["id"] in starts, spec["id"]  # never folded
        assert spec["title"].split()[0] in starts[spec["id"]]
    assert ("task kind" in lines[2]) == (width >= 100)


def test_check_passes_every_builtin_spec() -> None:
    result = run_ccpt("spec", "check", "--builtin")
    assert result.returncode == 0, result.stdout
    assert "0 failed" not in result.stdout and " passed" in result.stdout
    assert "FAIL" not in result.stdout


def test_check_fails_a_spec_without_criteria_or_numbers_naming_testable(tmp_path: Path) -> None:
    path = tmp_path / "vague.yaml"
    path.write_text(VAGUE)
    result = run_ccpt("spec", "check", str(path))
    assert result.returncode == 1
    testable = next(line for line in result.stdout.splitlines() if "Testable" in line)
    assert "FAIL" in testable and "no acceptance criteria and no reward with a number" in testable
    data = json.loads(run_ccpt("spec", "check", str(path), "--json").stdout)
    assert data[0]["passed"] is False
    assert {"check": "Testable", "status": "fail"}.items() <= next(
        v for v in data[0]["verdicts"] if v["check"] == "Testable"
    ).items()


def test_check_lists_open_parameters_until_set_fills_them(tmp_path: Path) -> None:
    path = tmp_path / "lora.md"
    path.write_text(TEMPLATE)
    unfilled = run_ccpt("spec", "check", str(path), "--json")
    assert unfilled.returncode == 1
    verdicts = {v["check"]: v for v in json.loads(unfilled.stdout)[0]["verdicts"]}
    assert verdicts["parameters"]["status"] == "fail"
    assert (
        "[GPU memory]" in verdicts["parameters"]["reason"] and "[0.1-1%]" in verdicts["parameters"]["reason"]
    )
    filled = run_ccpt("spec", "check", str(path), "--set", "GPU memory=24", "--set", "0.1-1%=0.5%")
    assert filled.returncode == 0, filled.stdout


def test_convert_a_seed_style_template_to_yaml_with_numeric_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "lora.md"
    path.write_text(TEMPLATE)
    result = run_ccpt("spec", "convert", str(path), "--set", "gpu_memory=24", "--set", "0.1-1%=1%")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert data["lead_role"] == "ModelArchitect" and data["task_kind"] == "causal-lm"
    assert data["rewards"][0]["threshold"] == {"metric": "eval_loss", "op": "<", "value": 1.8, "unit": "nats"}
    assert data["penalties"][0]["threshold"] == {
        "metric": "train_val_gap",
        "op": ">",
        "value": 0.05,
        "unit": "fraction",
    }
    assert data["constraints"][0]["threshold"]["metric"] == "gpu_memory_gb"
    assert data["parameters"] == {"GPU memory": "24", "0.1-1%": "1%"}


def test_convert_writes_files_both_ways_and_never_overwrites_silently(tmp_path: Path) -> None:
    source = tmp_path / "lora.md"
    source.write_text(TEMPLATE)
    as_yaml = tmp_path / "lora.yaml"
    assert run_ccpt("spec", "convert", str(source), "-o", str(as_yaml)).returncode == 0
    as_md = tmp_path / "back.md"
    assert run_ccpt("spec", "convert", str(as_yaml), "-o", str(as_md)).returncode == 0
    assert "## CONSTRAINTS" in as_md.read_text()
    again = run_ccpt("spec", "convert", str(as_md), "--to", "yaml")
    assert yaml.safe_load(again.stdout) == yaml.safe_load(as_yaml.read_text())
    refused = run_ccpt("spec", "convert", str(source), "-o", str(as_yaml))
    assert refused.returncode == 1 and "exists" in refused.stderr
    assert yaml.safe_load(as_yaml.read_text())["id"] == "fine-tune-with-lora-on-a-budget"


def test_prompt_prints_what_the_agents_receive() -> None:
    result = run_ccpt("spec", "prompt", "causal-lm")
    assert result.returncode == 0
    assert result.stdout.startswith("# Task spec: Small GPT")
    assert "[target: eval_loss < 6 (nats)]" in result.stdout


def test_show_renders_a_spec_and_its_yaml() -> None:
    shown = run_ccpt("spec", "show", "object-detection")
    assert shown.returncode == 0
    assert "(rendered by `ccpt new`)" in shown.stdout and "→ map >= 0.6" in shown.stdout
    assert "→ latency_p95_ms > 80" in shown.stdout  # "at the 95th percentile"
    as_yaml = yaml.safe_load(run_ccpt("spec", "show", "object-detection", "--yaml").stdout)
    assert as_yaml["id"] == "object-detection"
    assert "(rendered by `ccpt new`)" in run_ccpt("spec", "show", "document-understanding").stdout


def test_show_wraps_the_prompt_and_hangs_list_items_in_a_narrow_terminal() -> None:
    spec = json.loads(run_ccpt("spec", "show", "causal-lm", "--json").stdout)
    assert "\n" in spec["prompt"].strip()  # the prompt is written with hard line breaks
    lines = run_ccpt("spec", "show", "causal-lm", env={"COLUMNS": "80"}).stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    prompt = lines[lines.index("Prompt") + 1 : lines.index("Acceptance criteria") - 1]
    shown = " ".join(line.strip() for line in prompt)
    assert shown == " ".join(spec["prompt"].split())  # every word, in order, re-wrapped
    assert all(len(line.rstrip()) > 60 for line in prompt[:-1])  # no ragged short lines
    criteria = lines[lines.index("Acceptance criteria") + 1 : lines.index("Constraints") - 1]
    assert criteria[0].startswith("  - Given") and criteria[1].startswith("    ")  # hanging indent
    # The facts under the title break between facts, never inside one ("lead / NetworkArchitect").
    facts = lines[1 : lines.index(next(line for line in lines if "As a" in line))]
    assert [fact for line in facts for fact in line.strip().split(" · ")] == [
        "kind causal-lm (rendered by `ccpt new`)", "modality text", "5 points", "lead NetworkArchitect",
    ]  # fmt: skip


def test_reflow_joins_a_paragraph_s_lines_but_keeps_list_items_and_code() -> None:
    from ccpt.commands.spec import _reflow

    text = "Train a model\nfrom config.\n\nSteps:\n- load the data\n  and split it\n- train"
    text += "\n\n    x = 1\n    y = 2"
    assert _reflow(text) == [
        "Train a model from config.",
        "Steps:\n- load the data\n  and split it\n- train",
        "    x = 1\n    y = 2",
    ]
    numbered = "Train on\n2 GPUs, then:\n1. save\n2) serve"  # a number alone starts no item
    assert _reflow(numbered) == ["Train on 2 GPUs, then:\n1. save\n2) serve"]


def test_new_from_flags_writes_a_spec_that_passes_the_check(tmp_path: Path) -> None:
    result = run_ccpt(
        "spec", "new", "--no-input", "--title", "Churn classifier", "--kind", "text-classification",
        "--as-a", "retention analyst", "--i-want", "a churn classifier",
        "--so-that", "we call customers first",
        "--points", "3", "--reward", "Macro-F1 >= 0.8", "--constraint", "Latency under 20 ms per request",
        "--penalty", "Overfitting (>5% train-val gap)", "--goal", "A tested pipeline",
        "--accept", "Given last month, when scored, then macro-F1 is reported",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = tmp_path / "churn-classifier.yaml"
    data = yaml.safe_load(written.read_text())
    assert data["rewards"][0]["threshold"] == {
        "metric": "macro_f1",
        "op": ">=",
        "value": 0.8,
        "unit": "fraction",
    }
    assert data["scaffold"]["dataset"] == "builtin"
    assert run_ccpt("spec", "check", str(written)).returncode == 0


def test_new_asks_for_what_the_flags_leave_out(tmp_path: Path) -> None:
    answers = "\n".join([
        "Digit triage", "image-classification", "clinic", "a digit reader", "forms are read faster", "2",
        "Accuracy of at least 95%", "",
        "Given held-out digits, when evaluated, then accuracy is reported", "",
        "Model size under 5MB", "",
        "Overfitting (>5% train-val gap)", "",
        "A tested model", "",
    ]) + "\n"  # fmt: skip
    result = run_ccpt("spec", "new", "-o", "spec.yaml", cwd=tmp_path, input=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    assert data["id"] == "digit-triage" and data["points"] == 2
    assert data["rewards"][0]["threshold"]["value"] == 0.95


def test_new_without_input_names_the_missing_flags(tmp_path: Path) -> None:
    result = run_ccpt("spec", "new", "--no-input", "--title", "Half a spec", cwd=tmp_path)
    assert result.returncode == 1
    assert "--kind" in result.stderr and "--so-that" in result.stderr
    assert not list(tmp_path.iterdir())


def test_malformed_spec_is_one_error_line_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "id: bad\ntitle: Bad\nrewards:\n  - text: fast\n"
        "    threshold: {metric: latency_ms, op: '~', value: 5}\n"
    )
    result = run_ccpt("spec", "check", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"{path}:5: field 'rewards[0].threshold.op'" in lines[0]


def test_unknown_spec_name_suggests_the_close_one() -> None:
    result = run_ccpt("spec", "show", "causal-llm")
    assert result.returncode == 1
    assert "no built-in spec 'causal-llm'" in result.stderr and "causal-lm" in result.stderr


def complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    """What the shell gets from `ccpt`'s completion for the last word of `words`."""
    env = {"_CCPT_COMPLETE": f"complete_{shell}", "COMP_WORDS": words, "_TYPER_COMPLETE_ARGS": words}
    env["COMP_CWORD"] = str(len(words.split()) - 1)
    result = run_ccpt(cwd=cwd, env=env)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout.split() if shell == "bash" else [result.stdout]


def test_shell_completion_offers_builtin_ids_then_spec_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "team-specs").mkdir()
    (tmp_path / "team-specs" / "text-sentiment.yaml").write_text(VAGUE)
    (tmp_path / "team-specs" / "notes.txt").write_text("not a spec")
    (tmp_path / "text-ideas.md").write_text(TEMPLATE)
    assert complete("ccpt new demo --spec ca", tmp_path) == ["causal-lm"]
    assert complete("ccpt spec show tex", tmp_path) == [
        "text-classification", "text-generation", "text-ideas.md",
    ]  # fmt: skip
    assert complete("ccpt spec check team", tmp_path) == ["team-specs/"]
    assert complete("ccpt ask --spec team-specs/", tmp_path) == ["team-specs/text-sentiment.yaml"]
    assert complete("ccpt agent NetworkArchitect --spec lora", tmp_path) == ["lora-fine-tuning"]
    # zsh shows each id's title beside it
    (zsh,) = complete("ccpt new demo --spec causal", tmp_path, shell="zsh")
    assert "causal-lm" in zsh and "Small GPT" in zsh
