"""The built-in spec library, the ids `ccpt new` relies on, and the prompt text agents receive."""

from __future__ import annotations

import pytest
import yaml

from ccpt.errors import CcptError
from ccpt.resources import scaffolds_dir
from ccpt.specs import (
    builtin_specs_dir,
    dump_markdown,
    dump_yaml,
    list_builtin_specs,
    load_spec,
    parse_markdown_specs,
    parse_yaml_specs,
    read_spec_file,
    render_prompt,
)
from ccpt.specs.lint import check_spec
from ccpt.specs.model import SCAFFOLD_KINDS, TASK_KINDS, TaskSpec, Threshold

BUILTINS = list_builtin_specs()


@pytest.mark.parametrize("spec", BUILTINS, ids=[s.id for s in BUILTINS])
def test_every_builtin_spec_passes_the_check(spec: TaskSpec) -> None:
    report = check_spec(spec)
    assert report.passed, [v for v in report.verdicts if v.status == "fail"]
    assert spec.task_kind in TASK_KINDS
    assert spec.thresholds(), "a built-in spec carries machine-checkable gates"


@pytest.mark.parametrize("spec", BUILTINS, ids=[s.id for s in BUILTINS])
def test_every_builtin_spec_round_trips_through_yaml_and_markdown(spec: TaskSpec) -> None:
    assert parse_yaml_specs(dump_yaml(spec))[0] == spec
    assert parse_markdown_specs(dump_markdown([spec]))[0] == spec
    assert TaskSpec.from_dict(spec.to_dict()) == spec


def test_the_library_covers_the_catalog() -> None:
    ids = {spec.id for spec in BUILTINS}
    assert len(BUILTINS) >= 16
    catalog = {
        "image-classification",
        "object-detection",
        "semantic-segmentation",
        "text-classification",
        "named-entity-recognition",
        "question-answering",
        "text-generation",
        "image-captioning",
        "visual-question-answering",
        "document-understanding",
        "full-fine-tuning",
        "lora-fine-tuning",
        "instruction-tuning",
        "domain-adaptation",
        "language-model-pretraining",
        "vision-pretraining",
        "causal-lm",
    }
    assert catalog <= ids, catalog - ids
    formats = {path.suffix for path in builtin_specs_dir().iterdir()}
    assert {".yaml", ".md"} <= formats  # both readers are exercised by the library itself


@pytest.mark.parametrize("spec_id", ["image-classification", "text-classification", "causal-lm"])
def test_specs_ccpt_new_uses_are_scaffoldable_with_valid_copier_answers(spec_id: str) -> None:
    spec = load_spec(spec_id)
    assert spec.task_kind == spec_id and spec.scaffoldable
    questions = yaml.safe_load((scaffolds_dir() / "project" / "copier.yml").read_text())
    assert spec.scaffold["dataset"] == "builtin" and spec.scaffold["model_name"] == ""
    for key, value in spec.scaffold.items():
        assert key in questions, key
        if "choices" in questions[key]:
            assert value in questions[key]["choices"], (key, value)


def test_default_spec_has_honest_cpu_gates() -> None:
    gates = {(section, t.metric): t for section, t in load_spec("image-classification").thresholds()}
    assert gates[("rewards", "accuracy")] == Threshold("accuracy", ">=", 0.9, "fraction")
    assert gates[("penalties", "train_val_gap")].op == ">"
    assert gates[("constraints", "latency_ms")].value <= 50
    assert ("constraints", "model_size_mb") in gates
    assert load_spec("causal-lm").thresholds()[0][1].metric in {
        "training_hours",
        "eval_loss",
        "model_size_mb",
    }
    assert any(t == Threshold("eval_loss", "<", 6.0, "nats") for _, t in load_spec("causal-lm").thresholds())


def test_every_built_in_spec_is_of_a_kind_the_scaffold_renders() -> None:
    # A kind not rendered is a warning (tests/test_spec_lint.py); no built-in spec gets one.
    assert {spec.task_kind for spec in BUILTINS} <= SCAFFOLD_KINDS
    for spec in BUILTINS:
        verdict = next(v for v in check_spec(spec).verdicts if v.check == "task kind")
        assert verdict.status == "pass" and "rendered by `ccpt new`" in verdict.reason


def test_builtin_templates_keep_placeholders_in_the_file_and_fill_defaults_on_load() -> None:
    raw = {s.id: s for s in read_spec_file(builtin_specs_dir() / "fine-tuning.md")}["lora-fine-tuning"]
    assert raw.parameters == {"GPU memory": "24", "0.1-1%": "1%"}
    assert raw.constraints[0].text == "Memory budget: [GPU memory] GB"
    assert load_spec("lora-fine-tuning").constraints[0].threshold == Threshold(
        "gpu_memory_gb", "<=", 24, "GB"
    )
    bigger = load_spec("lora-fine-tuning", {"GPU memory": "80"})
    assert bigger.constraints[0].text == "Memory budget: 80 GB"
    assert bigger.parameters["GPU memory"] == "80"


def test_builtin_ids_are_unique_across_files() -> None:
    ids = [spec.id for spec in BUILTINS]
    assert len(ids) == len(set(ids))


def test_setting_a_parameter_a_spec_does_not_have_is_an_error() -> None:
    with pytest.raises(CcptError, match="has no parameter 'batch'"):
        load_spec("image-classification", {"batch": "8"})


def test_the_prompt_carries_story_request_criteria_and_gates() -> None:
    text = render_prompt(load_spec("image-classification"))
    assert text.startswith("# Task spec: ")
    for part in (
        "## User story",
        "## Request",
        "## Acceptance criteria",
        "## Constraints",
        "## Rewards",
        "## Penalties",
    ):
        assert part in text
    assert "Achieve at least 90% validation accuracy  [target: accuracy >= 0.9 (fraction)]" in text
    assert "[penalised when: train_val_gap > 0.05 (fraction)]" in text
    assert "Lead role: TestArchitect." in text


def test_the_prompt_lists_open_parameters() -> None:
    spec = load_spec("lora-fine-tuning")
    spec.parameters["Adapter rank"] = None
    assert "## Open parameters" in render_prompt(spec) and "- [Adapter rank]" in render_prompt(spec)
