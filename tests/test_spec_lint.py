"""The INVEST lint and CRPG checks: each verdict and the reason it gives."""

from __future__ import annotations

import dataclasses

import pytest

from ccpt.specs import lint, parse_yaml_specs
from ccpt.specs.lint import check_spec
from ccpt.specs.model import CrpgItem, TaskSpec

GOOD = """\
id: good
title: Good spec
task_kind: image-classification
points: 3
story: {as_a: engineer, i_want: a classifier, so_that: triage is faster}
acceptance:
  - Given held-out images, when evaluated, then accuracy is reported
constraints: [Model size under 10MB]
rewards: [Accuracy of at least 90%]
penalties: [Overfitting (>5% train-val gap)]
goal_state: [A tested training pipeline]
"""


def good() -> TaskSpec:
    return parse_yaml_specs(GOOD)[0]


def verdicts(spec: TaskSpec) -> dict[str, tuple[str, str]]:
    return {v.check: (v.status, v.reason) for v in check_spec(spec).verdicts}


def test_a_complete_spec_passes_every_check() -> None:
    report = check_spec(good())
    assert report.passed
    assert {v.status for v in report.verdicts} == {"pass"}
    assert [v.check for v in report.verdicts][:6] == [
        "Independent",
        "Negotiable",
        "Valuable",
        "Estimable",
        "Small",
        "Testable",
    ]


def test_no_acceptance_criteria_and_no_numbers_is_not_testable() -> None:
    spec = dataclasses.replace(good(), acceptance=[], rewards=[CrpgItem("Users are happier")])
    report = check_spec(spec)
    status, reason = verdicts(spec)["Testable"]
    assert status == "fail"
    assert "no acceptance criteria and no reward with a number" in reason
    assert not report.passed
    assert verdicts(spec)["rewards"][0] == "warn" and "without a number" in verdicts(spec)["rewards"][1]


def test_one_of_criteria_or_numeric_reward_is_a_warning() -> None:
    assert verdicts(dataclasses.replace(good(), acceptance=[]))["Testable"][0] == "warn"


def test_no_so_that_is_not_valuable() -> None:
    spec = good()
    spec.story = dataclasses.replace(spec.story, so_that="")
    assert verdicts(spec)["Valuable"] == ("fail", "no 'so that': say what the work is worth and to whom")


def test_over_eight_points_is_not_small_and_a_split_is_suggested() -> None:
    spec = parse_yaml_specs(
        GOOD.replace("points: 3", "points: 13").replace(
            "goal_state: [A tested training pipeline]",
            "goal_state: [data pipeline, baseline model, serving API, dashboard]",
        )
    )[0]
    status, reason = verdicts(spec)["Small"]
    assert status == "fail"
    assert "13 points is over 8" in reason and "'data pipeline; baseline model'" in reason


def test_depending_on_another_story_is_not_independent() -> None:
    spec = dataclasses.replace(good(), depends_on=["data-pipeline"])
    status, reason = verdicts(spec)["Independent"]
    assert status == "fail" and "data-pipeline" in reason


def test_no_estimate_is_not_estimable() -> None:
    spec = dataclasses.replace(good(), points=None)
    assert verdicts(spec)["Estimable"] == ("fail", "no estimate: add story points")


def test_unfilled_placeholders_fail_estimable_testable_and_parameters() -> None:
    spec = dataclasses.replace(good(), parameters={"GPU memory": None})
    found = verdicts(spec)
    for check in ("Estimable", "Testable", "parameters"):
        assert found[check][0] == "fail" and "[GPU memory]" in found[check][1], check


def test_prescriptive_wording_is_a_negotiable_warning() -> None:
    spec = dataclasses.replace(good(), prompt="You must use exactly a ResNet-18.")
    status, reason = verdicts(spec)["Negotiable"]
    assert status == "warn" and "must use" in reason


def test_contradictory_constraints_fail() -> None:
    spec = parse_yaml_specs(
        GOOD.replace(
            "constraints: [Model size under 10MB]",
            "constraints: [Model size under 10MB, Model size above 50MB]",
        )
    )[0]
    status, reason = verdicts(spec)["constraints"]
    assert status == "fail"
    assert "contradictory" in reason and "Model size above 50MB" in reason


def test_a_penalty_every_allowed_value_triggers_fails() -> None:
    spec = parse_yaml_specs(
        GOOD.replace("penalties: [Overfitting (>5% train-val gap)]", "penalties: [Model size under 20MB]")
    )[0]
    status, reason = verdicts(spec)["penalties"]
    assert status == "fail" and "Model size under 20MB" in reason


def test_a_kind_ccpt_new_cannot_render_is_a_warning_and_no_kind_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert verdicts(dataclasses.replace(good(), task_kind="document-understanding"))["task kind"][0] == "pass"
    # Every kind a spec may name renders today; a kind added to TASK_KINDS before its template is
    # written would be warned about.
    monkeypatch.setattr(lint, "SCAFFOLD_KINDS", frozenset({"image-classification"}))
    unrendered = dataclasses.replace(good(), task_kind="document-understanding")
    assert verdicts(unrendered)["task kind"][0] == "warn"
    assert verdicts(dataclasses.replace(good(), task_kind=""))["task kind"][0] == "fail"


def test_missing_crpg_sections_are_named() -> None:
    spec = dataclasses.replace(good(), constraints=[], penalties=[], goal_state=[], rewards=[])
    found = verdicts(spec)
    assert found["constraints"][0] == found["penalties"][0] == found["goal state"][0] == "warn"
    assert found["rewards"] == ("fail", "none: say what success is, with a number")


def test_report_as_json_carries_every_verdict() -> None:
    data = check_spec(good(), "good.yaml").to_dict()
    assert data["id"] == "good" and data["source"] == "good.yaml" and data["passed"] is True
    assert len(data["verdicts"]) == 12
    assert set(data["verdicts"][0]) == {"check", "status", "reason"}
