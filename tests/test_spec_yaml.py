"""The YAML reader: the documented schema, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccpt.errors import CcptError
from ccpt.specs import dump_yaml, dump_yaml_all, load_spec, load_specs, parse_yaml_specs
from ccpt.specs.model import Criterion, Story, Threshold

SPEC = """\
id: churn
title: Churn classifier
task_kind: text-classification
points: 3
story:
  as_a: retention analyst
  i_want: a classifier that flags customers likely to cancel
  so_that: we call them before they leave
prompt: |
  Train on the last 12 months.
  Report macro-F1.
acceptance:
  - given: last month's customers
    when: the model scores them
    then: macro-F1 is reported
  - Given a new customer, when scored, then a probability comes back
constraints:
  - Inference latency under 20 ms per request
  - text: Budget of 4 GPU hours
    threshold: {metric: gpu_hours, op: "<=", value: 4}
rewards:
  - Macro-F1 ≥ 0.8
penalties:
  - "Overfitting: more than 5% train-val gap"
depends_on: [customer-features]
parameters:
  GPU memory: "24"
extra_sections:
  Notes: [Uses the CRM export]
scaffold: {dataset: builtin, model_name: "", precision: auto, distributed: ddp}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_schema_field_is_read(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, SPEC))
    assert (spec.id, spec.title, spec.task_kind, spec.points) == (
        "churn",
        "Churn classifier",
        "text-classification",
        3,
    )
    assert spec.story == Story(
        "retention analyst",
        "a classifier that flags customers likely to cancel",
        "we call them before they leave",
    )
    assert spec.prompt == "Train on the last 12 months.\nReport macro-F1."
    assert spec.acceptance == [
        Criterion("last month's customers", "the model scores them", "macro-F1 is reported"),
        Criterion("a new customer", "scored", "a probability comes back"),
    ]
    assert spec.constraints[0].threshold == Threshold("latency_ms", "<", 20, "ms")
    assert spec.constraints[1].threshold == Threshold("gpu_hours", "<=", 4, None)  # pinned as written
    assert spec.rewards[0].threshold == Threshold("macro_f1", ">=", 0.8, "fraction")
    assert spec.penalties[0].threshold == Threshold("train_val_gap", ">", 0.05, "fraction")
    assert spec.depends_on == ["customer-features"]
    assert spec.parameters == {"GPU memory": "24"}
    assert spec.extra_sections == {"Notes": ["Uses the CRM export"]}
    assert spec.scaffold == {
        "dataset": "builtin",
        "model_name": "",
        "precision": "auto",
        "distributed": "ddp",
    }


def test_dump_then_read_gives_the_same_spec(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, SPEC))
    assert parse_yaml_specs(dump_yaml(spec))[0] == spec
    assert "prompt: |" in dump_yaml(spec)  # multi-line text stays readable


def test_several_documents_in_one_file(tmp_path: Path) -> None:
    first = load_spec(write(tmp_path, SPEC))
    second = load_spec(write(tmp_path, SPEC.replace("id: churn", "id: churn-v2"), "b.yaml"))
    path = write(tmp_path, dump_yaml_all([first, second]), "both.yaml")
    assert [s.id for s in load_specs(path)] == ["churn", "churn-v2"]
    assert load_spec(f"{path}#churn-v2") == second


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id: a\ntitle: [unclosed\n", 3, "not valid YAML"),
        (
            "id: a\ntitle: A\ntask_kind: image-classification\nrewrds:\n  - x\n",
            4,
            "field 'rewrds': unknown field (did you mean 'rewards'?)",
        ),
        ("id: a\ntitle: A\ntask_kind: vision\n", 3, "field 'task_kind': 'vision' is not one of"),
        ("id: My Spec\ntitle: A\n", 1, "field 'id': 'My Spec' must be lowercase"),
        ("id: a\ntask_kind: causal-lm\n", 1, "field 'title': missing"),
        ("id: a\ntitle: A\npoints: many\n", 3, "field 'points': expected a whole number"),
        (
            "id: a\ntitle: A\nrewards:\n  - text: fast\n"
            "    threshold: {metric: latency_ms, op: '=>', value: 5}\n",
            5,
            "field 'rewards[0].threshold.op': '=>' is not one of",
        ),
        (
            "id: a\ntitle: A\nrewards:\n  - ok\n  - text: fast\n"
            "    threshold: {metric: latency_ms, op: '<', value: soon}\n",
            6,
            "field 'rewards[1].threshold.value': expected a number",
        ),
        ("id: a\ntitle: A\nconstraints:\n  - Budget: 4 GPU hours\n", 4, "put the item in quotes"),
        (
            "id: a\ntitle: A\nstory:\n  as_a: x\n  so_tht: y\n",
            5,
            "field 'story.so_tht': unknown field (did you mean 'so_that'?)",
        ),
        ("id: a\ntitle: A\nconstraints: fast\n", 3, "field 'constraints': expected a list"),
        ("- just\n- a list\n", 1, "expected a mapping"),
    ],
)
def test_malformed_yaml_names_file_line_and_field(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CcptError) as error:
        load_specs(path)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert message in str(error.value)


def test_an_empty_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CcptError, match="holds no task spec"):
        load_spec(write(tmp_path, "# nothing yet\n"))


def test_a_missing_file_and_an_unknown_builtin_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CcptError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(CcptError, match="no built-in spec 'image-clasification'") as error:
        load_spec("image-clasification")
    assert "image-classification" in (error.value.hint or "")
