"""The Markdown reader on prompt-library files as people write them, and the round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccpt.errors import CcptError
from ccpt.specs import dump_markdown, dump_yaml, load_spec, load_specs, parse_markdown_specs, parse_yaml_specs
from ccpt.specs.model import Criterion, Story, Threshold

# A seed-style library: a file title, two specs under ## titles, sections at ### and ####, any
# case, `*` and `-` bullets, unicode dashes and signs, extra spaces, trailing blanks, a nested
# bullet list, placeholders, an @agent- role, an unknown section and a one-line user story.
LIBRARY = """\
# Team prompt library

Copy a template, fill the [brackets], hand it to the team.

## 1. Fine-tune an LLM with LoRA

**Story Points:** 5

**User Story:**
As a ML engineer with one GPU,
I want to fine-tune a 7B model with LoRA\x20\x20\x20
So that support answers match our tone.

**Prompt:**
@agent-ModelArchitect Configure LoRA for a causal LM on our tickets.
**Important:** keep the base weights frozen.

### Constraints
* Memory budget: [GPU memory] GB
*   Train only [0.1-1%] of parameters
- Hardware:
  - 1x A100
  - Spot instances only

### rewards
- Eval loss < 1.8 on held-out tickets
- Win rate — at least 60% vs the base model

#### PENALTIES
- Overfitting (>5% train\u2011val gap)
-   Catastrophic forgetting (more than 2% drop on general benchmarks)

GOAL STATE:
- Adapter weights under 100 MB
- A model card
  with the evaluation numbers

### Acceptance Criteria
- **Given** held-out tickets, **when** the evaluation runs, **then** eval loss is reported

### Notes for reviewers
Check the licence of the base model.
- and the tokenizer's

## Object detection API

**User Story:** As a product owner, I want a real-time detector, so that cameras flag hazards.

**Prompt:** Deploy a detector with <50ms latency.

### REWARDS
* mAP@0.5 ≥ 0.5
"""


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    path = tmp_path / "library.md"
    path.write_text(LIBRARY, encoding="utf-8")
    return path


def test_each_title_heading_starts_a_spec(library: Path) -> None:
    specs = load_specs(library)
    assert [s.id for s in specs] == ["fine-tune-an-llm-with-lora", "object-detection-api"]
    assert specs[0].title == "Fine-tune an LLM with LoRA"


def test_story_prompt_points_and_lead_role_are_read(library: Path) -> None:
    spec = load_specs(library)[0]
    assert spec.story == Story(
        "ML engineer with one GPU", "to fine-tune a 7B model with LoRA", "support answers match our tone"
    )
    assert spec.points == 5
    assert spec.lead_role == "ModelArchitect"
    assert spec.prompt.startswith("@agent-ModelArchitect Configure LoRA")
    assert (
        "**Important:** keep the base weights frozen." in spec.prompt
    )  # a bold label inside a prompt stays prompt


def test_sections_at_any_level_case_and_bullet_style(library: Path) -> None:
    spec = load_specs(library)[0]
    assert [i.text for i in spec.constraints] == [
        "Memory budget: [GPU memory] GB",
        "Train only [0.1-1%] of parameters",
        "Hardware: 1x A100",
        "Hardware: Spot instances only",
    ]
    assert [i.threshold for i in spec.rewards] == [
        Threshold("eval_loss", "<", 1.8, "nats"),
        Threshold("win_rate", ">=", 0.6, "fraction"),
    ]
    assert [i.threshold for i in spec.penalties] == [
        Threshold("train_val_gap", ">", 0.05, "fraction"),
        Threshold("accuracy_drop", ">", 0.02, "fraction"),
    ]
    assert [i.text for i in spec.goal_state] == [
        "Adapter weights under 100 MB",
        "A model card with the evaluation numbers",
    ]
    assert spec.acceptance == [Criterion("held-out tickets", "the evaluation runs", "eval loss is reported")]


def test_placeholders_are_open_parameters_until_set(library: Path) -> None:
    spec = load_specs(library)[0]
    assert spec.open_parameters() == ["GPU memory", "0.1-1%"]
    assert spec.constraints[0].threshold is None

    filled = load_spec(f"{library}#fine-tune-an-llm-with-lora", {"gpu_memory": "24", "0.1-1%": "0.5%"})
    assert filled.open_parameters() == []
    assert filled.constraints[0].text == "Memory budget: 24 GB"
    assert filled.constraints[0].threshold == Threshold("gpu_memory_gb", "<=", 24, "GB")
    assert filled.constraints[1].threshold == Threshold("trainable_params_fraction", "<=", 0.005, "fraction")


def test_unknown_sections_are_kept(library: Path) -> None:
    spec = load_specs(library)[0]
    assert spec.extra_sections == {
        "Notes for reviewers": ["Check the licence of the base model.", "and the tokenizer's"]
    }


def test_one_line_user_story_and_guessed_task_kind(library: Path) -> None:
    spec = load_specs(library)[1]
    assert spec.story == Story("product owner", "a real-time detector", "cameras flag hazards")
    assert spec.task_kind == "object-detection"
    assert spec.rewards[0].threshold == Threshold("map", ">=", 0.5, "fraction")
    assert spec.lead_role is None


def test_a_file_with_several_specs_needs_a_selector(library: Path) -> None:
    with pytest.raises(CcptError) as error:
        load_spec(library)
    assert "fine-tune-an-llm-with-lora" in str(error.value) and "object-detection-api" in str(error.value)
    assert load_spec(f"{library}#object-detection-api").title == "Object detection API"
    with pytest.raises(CcptError, match="no spec 'nope'"):
        load_spec(f"{library}#nope")


def test_markdown_to_yaml_and_back_is_the_same_spec(library: Path) -> None:
    for spec in load_specs(library):
        assert parse_yaml_specs(dump_yaml(spec))[0] == spec


def test_yaml_to_markdown_and_back_is_the_same_spec(library: Path) -> None:
    filled = load_specs(library, {"GPU memory": "24", "0.1-1%": "1%"})
    for spec in filled:
        assert parse_markdown_specs(dump_markdown([spec]))[0] == spec
    assert parse_markdown_specs(dump_markdown(filled)) == filled


def test_a_pinned_threshold_survives_markdown() -> None:
    text = (
        "# Spec\n\n**User Story:** As a x, I want y, so that z\n\n## REWARDS\n- Be quick {latency_ms < 20}\n"
    )
    spec = parse_markdown_specs(text)[0]
    assert spec.rewards[0].text == "Be quick"
    assert spec.rewards[0].threshold == Threshold("latency_ms", "<", 20, "ms")
    assert parse_markdown_specs(dump_markdown([spec]))[0] == spec


def test_code_fenced_prompt_and_plain_section_labels() -> None:
    text = (
        "### Tiny spec\n**ID:** tiny\n**Task kind:** text-classification\n**User Story:**\n"
        "- As an analyst\n- I want topics\n- So that routing is automatic\n"
        "**Prompt:**\n```\nclassify tickets\n- into 5 topics\n```\n"
        "Rewards:\n1. macro-F1 at least 0.8\n2) accuracy ≥ 85 %\n"
    )
    spec = parse_markdown_specs(text)[0]
    assert spec.id == "tiny" and spec.task_kind == "text-classification"
    assert spec.story == Story("analyst", "topics", "routing is automatic")
    assert spec.prompt == "classify tickets\n- into 5 topics"
    assert [str(i.threshold) for i in spec.rewards] == ["macro_f1 >= 0.8", "accuracy >= 0.85"]


def test_parameters_section_gives_defaults_that_set_overrides(tmp_path: Path) -> None:
    path = tmp_path / "t.md"
    path.write_text(
        "# Budgeted\n**User Story:** As a a, I want b, so that c\n"
        "## CONSTRAINTS\n- Memory budget: [GPU memory] GB\n## PARAMETERS\n- GPU memory: 24\n",
        encoding="utf-8",
    )
    assert load_spec(path).constraints[0].threshold == Threshold("gpu_memory_gb", "<=", 24, "GB")
    assert load_spec(path, {"GPU memory": "80"}).constraints[0].threshold == Threshold(
        "gpu_memory_gb", "<=", 80, "GB"
    )
    with pytest.raises(CcptError, match="no parameter 'gpu'"):
        load_spec(path, {"gpu": "8"})


def test_markdown_without_any_spec_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nJust prose here.\n", encoding="utf-8")
    with pytest.raises(CcptError, match=r"notes\.md: holds no task spec"):
        load_spec(path)


def test_bad_story_points_and_task_kind_name_the_line() -> None:
    with pytest.raises(CcptError, match=r"lib\.md:3: field 'story points': 'lots'"):
        parse_markdown_specs(
            "# S\n**User Story:** As a a, I want b, so that c\n**Story Points:** lots\n", "lib.md"
        )
    with pytest.raises(CcptError, match=r"lib\.md:2: field 'task kind': 'vision-thing' is not one of"):
        parse_markdown_specs("# S\n**Task kind:** vision-thing\n**User Story:** As a a, I want b\n", "lib.md")


def test_bold_bullets_are_items_not_sections() -> None:
    text = (
        "# S\n**User Story:** As a a, I want b, so that c\n"
        "## REWARDS\n- **Accuracy:** at least 90%\n- **Fast**\n"
    )
    spec = parse_markdown_specs(text)[0]
    assert [i.text for i in spec.rewards] == ["Accuracy: at least 90%", "Fast"]
    assert spec.rewards[0].threshold == Threshold("accuracy", ">=", 0.9, "fraction")
    assert spec.extra_sections == {}


def test_windows_line_endings_tabs_emoji_headings_and_single_star_emphasis() -> None:
    text = (
        "# \U0001f680 Image segmentation\r\n\r\n**User Story**:\r\nAs a *radiologist*\r\n"
        "I want tumours outlined\r\nSo that review is faster\r\n\r\n"
        "## \U0001f3af REWARDS:\r\n\t- Dice \u2265 0.8\r\n   * mIoU \u2014 at least 75 %\r\n"
    )
    spec = parse_markdown_specs(text)[0]
    assert (spec.id, spec.task_kind) == ("image-segmentation", "semantic-segmentation")
    assert spec.story == Story("radiologist", "tumours outlined", "review is faster")
    assert [str(item.threshold) for item in spec.rewards] == ["dice >= 0.8", "miou >= 0.75"]
