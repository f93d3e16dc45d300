"""A run's model card (`runner.py card`): a Markdown file, in the layout the Hugging Face Hub reads
(YAML metadata with a `model-index`, then prose), that says what the model is for, how it scored
on the validation split, which acceptance gates of the task spec it passes, and how it was
trained. Everything in it comes from the run's files and the spec; nothing is written by hand.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from acceptance import Gate, final_record, read_records, read_spec, readable, unchecked_items
from config import ROOT, TASK_KIND, Config

# The Hub's name for each kind's task, where it has one.
PIPELINE_TAGS = {
    "image-classification": "image-classification",
    "text-classification": "text-classification",
    "token-classification": "token-classification",
    "semantic-segmentation": "image-segmentation",
    "object-detection": "object-detection",
    "image-captioning": "image-to-text",
    "visual-question-answering": "visual-question-answering",
    "image-pretraining": "image-feature-extraction",
    "masked-lm": "fill-mask",
    "question-answering": "question-answering",
    "causal-lm": "text-generation",
}
# What a final record holds that is not a score of the model on the validation split.
BOOKKEEPING = frozenset(
    ("kind", "time", "step", "parameters", "trainable_parameters", "elapsed_s", "world_size", "gpus")
)
SIZES = ("examples", "tokens")  # how much of the validation split the scores cover
SECTION_WORDS = {"constraints": "constraint", "rewards": "reward", "penalties": "penalty"}


def validation_scores(final: dict) -> dict[str, float]:
    """The final record's scores of the saved model on the validation split."""
    return {
        name: value
        for name, value in final.items()
        if name not in BOOKKEEPING.union(SIZES)
        and not name.startswith("train_")
        and isinstance(value, (int, float))
    }


def cell(text: object) -> str:
    """Text for one cell of a Markdown table: a `|` would end the cell, a line break the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def metadata(name: str, config: Config, scores: dict[str, float], library: str) -> str:
    """The YAML block the Hub reads: library, task, tags and each validation score in a
    `model-index`."""
    task = {"type": PIPELINE_TAGS[TASK_KIND]} if TASK_KIND in PIPELINE_TAGS else {"type": TASK_KIND}
    fields: dict[str, object] = {"library_name": library, "tags": ["ccpt", TASK_KIND]}
    if TASK_KIND in PIPELINE_TAGS:
        fields["pipeline_tag"] = PIPELINE_TAGS[TASK_KIND]
    if config.model_name:
        fields["base_model"] = config.model_name
    metrics = [{"type": metric, "value": round(float(value), 6)} for metric, value in scores.items()]
    dataset = {"name": config.dataset, "type": config.dataset, "split": "validation"}
    results = [{"task": task, "dataset": dataset, "metrics": metrics}]
    fields["model-index"] = [{"name": name, "results": results}]
    return "---\n" + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True) + "---\n"


def story(spec: dict) -> list[str]:
    """The spec's user story and acceptance criteria, as a quote and a list."""
    lines = []
    parts = spec.get("story") or {}
    if parts:
        lines += [
            f"> **As a** {parts.get('as_a', '')}, **I want** {parts.get('i_want', '')},"
            f" **so that** {parts.get('so_that', '')}.",
            "",
        ]
    for criterion in spec.get("acceptance") or []:
        lines.append(
            f"- **Given** {criterion.get('given', '')}, **when** {criterion.get('when', '')},"
            f" **then** {criterion.get('then', '')}."
        )
    return [*lines, ""] if spec.get("acceptance") else lines


def gate_table(gates: list[Gate], spec_path: Path) -> list[str]:
    """The spec's gates as `runner.py check` judges them, then the items left to people."""
    lines = [
        "| gate, in the spec's words | metric | must be | measured | result |",
        "|---|---|---|---|---|",
    ]
    for gate in gates:
        target = f"{gate.op} {readable(gate.metric, gate.target)}"
        measured = "-" if gate.observed is None else readable(gate.metric, gate.observed)
        words = f"{SECTION_WORDS[gate.section]}: {gate.text}"
        must = f"not {target}" if gate.section == "penalties" else target
        lines.append(f"| {cell(words)} | {gate.metric} | {cell(must)} | {cell(measured)} | {gate.status} |")
    if not gates:
        lines = [f"{spec_path.name} has no machine-checkable thresholds."]
    failed = sum(gate.status == "fail" for gate in gates)
    unmeasured = sum(gate.status == "not measured" for gate in gates)
    verdict = f"{failed} of {len(gates)} failed" if failed else "Every measured gate passes"
    lines += ["", verdict + (f"; {unmeasured} not measured." if unmeasured else ".")]
    by_hand = unchecked_items(spec_path)
    if by_hand:
        lines += ["", "Not machine-checkable (reviewed by people):", "", *[f"- {text}" for text in by_hand]]
    return [*lines, ""]


def training(final: dict, config: Config, settings: str) -> list[str]:
    """How the run was trained: size, steps, time, hardware, and every setting (`settings`: the
    run's config.json)."""
    parameters, trained = final["parameters"], final["trainable_parameters"]
    share = "all trained" if trained == parameters else f"{trained:,} trained ({trained / parameters:.2%})"
    hardware = f"{final['gpus']} GPU(s)" if final["gpus"] else "CPU"
    return [
        "| | |",
        "|---|---|",
        f"| parameters | {parameters:,}, {share} |",
        f"| steps | {final['step']:,} |",
        f"| training time | {readable('training_hours', final['elapsed_s'] / 3600)} |",
        f"| processes | {final['world_size']} on {hardware} |",
        f"| data | {cell(config.dataset)} |",
        "",
        "<details><summary>Every setting (config.json)</summary>",
        "",
        "```json",
        settings.strip(),
        "```",
        "",
        "</details>",
        "",
    ]


def model_card(
    run_dir: Path, spec_path: Path, gates: list[Gate] | None, use: list[str], library: str = "pytorch"
) -> str:
    """The card of the run in `run_dir`: its `gates` judged on it (acceptance.check_run; None leaves
    the section out), `use` (Markdown lines on how to use the model) and `library`, the one the Hub
    names for loading it."""
    config = Config.load(run_dir / "config.json")
    final, spec = final_record(run_dir, read_records(run_dir)), read_spec(spec_path)
    scores = validation_scores(final)
    name = ROOT.name  # the project's folder
    title = spec.get("title") or TASK_KIND
    size = ", ".join(f"{final[count]:,} {count}" for count in SIZES if count in final)
    examples = f" ({size})" if size else ""
    lines = [
        metadata(name, config, scores, library),
        f"# {name}: run {run_dir.name}",
        "",
        f"{title} (task spec `{spec.get('id', spec_path.stem)}`, a {TASK_KIND} project made with ccpt).",
        "",
        *story(spec),
        "## Results",
        "",
        f"The saved model (step {final['step']:,}) on the validation split{examples}:",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {metric} | {readable(metric, value)} |" for metric, value in scores.items()],
        "",
    ]
    if "train_val_gap" in final:
        lines += [f"Train-validation gap: {readable('train_val_gap', final['train_val_gap'])}.", ""]
    if gates is not None:
        lines += ["## Acceptance gates", "", *gate_table(gates, spec_path)]
    lines += ["## Training", "", *training(final, config, (run_dir / "config.json").read_text())]
    lines += ["## Use", "", *use, ""]
    return "\n".join(lines)
