"""`runner.py check`: the task spec's acceptance gates, measured on a finished run.

specs/task.yaml is the spec this project was made from. Its constraints, rewards and penalties
that carry a threshold ("accuracy >= 0.9", "latency_ms < 50") are machine-checkable. Each metric
is measured on the run: from the final record of its metrics.jsonl (the saved model's scores,
the classes its predictions use, the train-val gap, parameter count, training time), from its
training and evaluation records (NaN or infinite losses, streaks of a rising validation loss,
training throughput), from model.pt on disk (size), by timing predictions as the server makes
them (latency_ms, the median, and latency_p95_ms, the 95th percentile; inference_throughput,
whole predictions per second; for a text generator also time to first token), by sampling
continuations (tokens per second, the most repeated word n-gram of one: max_4gram_repeats), for
a text generator fine-tuned from another run by comparing the two (win_rate, accuracy_drop), for
one trained on instructions by answering held-out ones (rouge_l, format_error_rate) and counting
the training targets its loss took in the instructions (prompt_loss_tokens), or by
reading the run's data again (split_overlap: validation examples that share what identifies them
with a training example, an exact copy, or for tiles their scene). Each gate is then
  pass          a reward or constraint that holds, or a penalty whose condition does not hold
  fail          a reward or constraint that does not hold, or a penalty whose condition holds
  not measured  a metric this project does not measure (cost_usd, bleu ...): neither pass nor fail
"""

from __future__ import annotations

import bisect
import json
import math
import operator
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from config import Config, ProjectError

if TYPE_CHECKING:  # the model's code is imported only when a gate needs predictions
    from predictor import Predictor

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
SECTIONS = ("constraints", "rewards", "penalties")
# Metrics copied from the final record as they are (names as in the spec).
FINAL_METRICS = (
    "accuracy",
    "top5_accuracy",
    "exact_match",
    "miou",
    "map",
    "bleu",
    "cider",
    "macro_f1",
    "f1",
    "precision",
    "recall",
    "worst_class_precision",
    "worst_class_recall",
    "worst_class_f1",
    "eval_loss",
    "perplexity",
    "accuracy_drop",
    "train_val_gap",
    "predicted_classes",
)
# Per-class scores a run records as precision_drug, recall_drug, f1_drug (for the class "drug"), and
# accuracy on one kind of input (accuracy_stacked_bar: on stacked bar charts).
PER_CLASS_METRICS = re.compile(r"(?:precision|recall|f1|iou|ap|accuracy)_\w+")
ALIASES = {"f1": "macro_f1"}  # a classifier's F1 is its macro F1 (a tagger records its own f1)
LATENCY_SAMPLES = 20
LATENCY_METRICS = {"latency_ms", "latency_p95_ms"}  # the median prediction's time and the slow tail's
REPEATED_NGRAMS = re.compile(r"max_(?P<n>[1-9])gram_repeats")  # max_4gram_repeats: word 4-grams
# Continuations sampled for the repetition and generation-speed gates, and their length in tokens.
CONTINUATIONS = 8
CONTINUATION_TOKENS = 256
GENERATION_METRICS = ("time_to_first_token_ms", "generation_tokens_per_second")
# Timed afresh by every check, so two checks of one run may judge these differently near a target.
TIMED_METRICS = frozenset({*LATENCY_METRICS, "inference_throughput", *GENERATION_METRICS})
BASE_METRICS = {"win_rate", "accuracy_drop"}  # a fine-tuned run against the run it started from
ANSWER_METRICS = {"rouge_l", "format_error_rate"}  # a run on instructions answering held-out ones
PROMPT_LOSS = "prompt_loss_tokens"  # a run on instructions: training targets inside the instructions
_OVERFITTING = (
    "more dropout or weight decay (--set dropout=..., --set weight_decay=...), stopping early"
    " (--set patience=3), or more training data"
)
SETTINGS = {setting.name for setting in fields(Config)}
# What to try when a gate on an anti-pattern fails (printed under the table by `runner.py check`).
HINTS = {
    "split_overlap": "drop duplicate examples from the data before it is split, and keep examples that share"
    " a source (the tiles of one scene) on one side: an example on each side scores the model on what it"
    " trained on",
    "predicted_classes": "look at the class balance of the training split, then try a lower --lr or more"
    " steps",
    "train_val_gap": _OVERFITTING,
    "overfitting_evals": _OVERFITTING,
    "rising_val_loss_evals": "stop early (--set patience=3) or lower the learning rate (--lr)",
    "nonfinite_losses": "train again (or --resume) with a lower learning rate (--lr) or a tighter clip"
    " (--set grad_clip=0.5)",
    "max_ngram_repeats": "train longer or on more text; when serving, a higher temperature or top_k breaks"
    " loops",
    PROMPT_LOSS: "take the loss on the answers alone: data.ChatExamples sets the targets of an instruction's"
    " tokens to IGNORE, which the loss skips",
    "perplexity": "train longer (without --max-steps, the settings' whole schedule) or at a higher --lr",
    "accuracy_drop": "replay more of the general text while adapting (--set general_mix=1), or adapt for"
    " fewer steps or at a lower --lr"
    if "general_mix" in SETTINGS
    else "fine-tune for fewer steps, at a lower --lr, or with a lower --set lora_rank",
}
if "lora_rank" in SETTINGS:  # a language model that can be fine-tuned with LoRA
    HINTS["trainable_params_fraction"] = (
        "fine-tune with LoRA: train a run, then python src/runner.py train --set init_from=RUN"
        " --set lora_rank=8 (or adapt a pretrained --set model_name=NAME the same way); a LoRA run"
        " already: a lower lora_rank (each adapter trains rank x (inputs + outputs) numbers)"
    )
# How a metric this project can measure comes to be measured, for a gate that reads "not measured".
MEASURED_WHEN = (
    {name: "measured on a run fine-tuned from another (--set init_from=RUN)" for name in BASE_METRICS}
    | {
        name: "measured on a run trained on the instruction data (--set dataset=instructions)"
        for name in {*ANSWER_METRICS, PROMPT_LOSS}
    }
    if "init_from" in SETTINGS
    else {}
)


# The unit each number is read in, written after it: "12 ms", not a bare 12 that could be seconds.
UNIT_SUFFIXES = {
    "latency_ms": " ms",
    "latency_p95_ms": " ms",
    "time_to_first_token_ms": " ms",
    "model_size_mb": " MB",
    "gpu_memory_gb": " GB",
    "parameters_m": " M",
    "throughput": "/s",
    "inference_throughput": "/s",
    "tokens_per_second": " tokens/s",
    "generation_tokens_per_second": " tokens/s",
}


def readable(metric: str, value: float) -> str:
    """A gate's number for people: times in seconds or minutes when under an hour or two
    ("2 min", not "0.0333333"), large numbers in full ("41,400"), everything else to four
    digits, with its unit where it has one ("12.5 ms", "$3.20")."""
    if metric in ("training_hours", "gpu_hours"):
        seconds = float(f"{value * 3600:.4g}")  # "2 minutes" is stored as 0.0333333 h
        if seconds < 120:
            return f"{seconds:.3g} s"
        if seconds < 7200:
            return f"{seconds / 60:.3g} min"
        return f"{value:.3g} h"
    if metric == "cost_usd":
        return f"${value:,.2f}"
    number = f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"  # 41,400, not 4.14e+04
    return number + UNIT_SUFFIXES.get(metric, "")


@dataclass
class Gate:
    section: str  # constraints, rewards or penalties
    text: str  # the spec's own words
    metric: str
    op: str
    target: float
    observed: float | None = None
    status: str = "not measured"

    def judge(self, observed: float) -> None:
        holds = COMPARISONS[self.op](observed, self.target)
        self.observed = observed
        self.status = "pass" if holds != (self.section == "penalties") else "fail"

    def as_dict(self) -> dict[str, object]:
        """The gate for JSON, its numbers also as people read them (times in seconds or minutes),
        and for a failed gate on an anti-pattern, what to try."""
        observed = None if self.observed is None else readable(self.metric, self.observed)
        return asdict(self) | {
            "target_text": readable(self.metric, self.target),
            "observed_text": observed,
            "hint": hint(self.metric) if self.status == "fail" else None,
        }


def hint(metric: str) -> str | None:
    """What to try when a gate on `metric` fails, if this project knows."""
    return HINTS.get("max_ngram_repeats" if REPEATED_NGRAMS.fullmatch(metric) else metric)


def read_spec(spec_path: Path) -> dict:
    if not spec_path.exists():
        raise ProjectError(f"no task spec at {spec_path}; `ccpt new` writes it (or pass --spec FILE)")
    try:
        return yaml.safe_load(spec_path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ProjectError(f"{spec_path} is not valid YAML: {error}") from None


def read_gates(spec_path: Path) -> list[Gate]:
    """Every constraint, reward and penalty of the spec that has a threshold."""
    spec = read_spec(spec_path)
    gates = []
    for section in SECTIONS:
        for item in spec.get(section) or []:
            if not has_threshold(item):
                continue
            threshold = item["threshold"]
            if threshold.get("op") not in COMPARISONS:
                raise ProjectError(f"{spec_path}: {section}: unknown comparison {threshold.get('op')!r}")
            metric = str(threshold["metric"])
            gates.append(
                Gate(section, str(item.get("text", "")), metric, threshold["op"], float(threshold["value"]))
            )
    return gates


def unchecked_items(spec_path: Path) -> list[str]:
    """The spec's constraints, rewards and penalties without a number: judged by people, not here."""
    spec = read_spec(spec_path)
    items = [item for section in SECTIONS for item in spec.get(section) or []]
    return [
        item["text"] if isinstance(item, dict) else str(item) for item in items if not has_threshold(item)
    ]


def has_threshold(item: object) -> bool:
    return isinstance(item, dict) and bool(item.get("threshold"))


def read_records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise ProjectError(f"{run_dir} has no metrics.jsonl; train first: python src/runner.py train")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def final_record(run_dir: Path, records: list[dict]) -> dict:
    """The run's final record among its `records`, or one line on why it has none (it diverged,
    or it has not finished)."""
    finals = [r for r in records if r["kind"] == "final"]
    if finals:
        return finals[-1]
    diverged = [r for r in records if r["kind"] == "train" and not math.isfinite(r["loss"])]
    if diverged:
        raise ProjectError(
            f"{run_dir.name} stopped at step {diverged[0]['step']}, where its training loss became"
            f" {diverged[0]['loss']}, so it has no final scores to check; train it again (or --resume it)"
            " with a lower learning rate"
        )
    raise ProjectError(f"{run_dir.name} has not finished (no final record); train it to the end first")


def measure(run_dir: Path, wanted: set[str]) -> dict[str, float]:
    """The value of each metric in `wanted` that this run can give (others are left out)."""
    records = read_records(run_dir)
    final = final_record(run_dir, records)
    training = [r for r in records if r["kind"] == "train"]
    diverged = [r for r in training if not math.isfinite(r["loss"])]
    values: dict[str, float] = {name: final[name] for name in FINAL_METRICS if name in final}
    values |= {name: final[name] for name in wanted & final.keys() if PER_CLASS_METRICS.fullmatch(name)}
    values["parameters_m"] = final["parameters"] / 1e6
    values["trainable_params_fraction"] = final["trainable_parameters"] / max(final["parameters"], 1)
    values["training_hours"] = final["elapsed_s"] / 3600
    values["gpu_hours"] = values["training_hours"] * final["gpus"]
    values["model_size_mb"] = (run_dir / "model.pt").stat().st_size / 1e6
    values["nonfinite_losses"] = len(diverged)  # logged training losses that are NaN or infinite
    evaluations = [r for r in records if r["kind"] == "eval"]
    values["rising_val_loss_evals"] = longest_rise(evaluations, training, while_training_falls=False)
    values["overfitting_evals"] = longest_rise(evaluations, training, while_training_falls=True)
    for metric, key, combine in (
        ("throughput", "samples_per_s", statistics.median),  # training's; inference_throughput below
        ("tokens_per_second", "tokens_per_s", statistics.median),
        ("mfu", "mfu", statistics.median),
        ("gpu_memory_gb", "gpu_memory_gb", max),
    ):
        seen = [r[key] for r in training if key in r]
        if seen:
            values[metric] = combine(seen)
    for alias, name in ALIASES.items():
        if name in values and alias not in values:
            values[alias] = values[name]
    if "split_overlap" in wanted:
        values["split_overlap"] = measure_split_overlap(run_dir)
    values.update(measure_predictions(run_dir, wanted - values.keys()))  # what the records lack
    return {name: value for name, value in values.items() if name in wanted}


def measure_predictions(run_dir: Path, wanted: set[str]) -> dict[str, float]:
    """The metrics in `wanted` that come from running the trained model (loaded once for all of
    them): latency, inference throughput (whole predictions per second, one at a time as the
    server makes them), and for a text generator time to first token, generation speed, repeats
    and, fine-tuned from another run, how it compares with that run; trained on instructions, how
    it answers held-out ones."""
    ngram_sizes = {int(match["n"]) for match in map(REPEATED_NGRAMS.fullmatch, wanted) if match}
    from_the_model = {*LATENCY_METRICS, "inference_throughput", *GENERATION_METRICS, *BASE_METRICS}
    from_the_model |= {*ANSWER_METRICS, PROMPT_LOSS}
    if not (from_the_model & wanted or ngram_sizes):
        return {}
    from predictor import Predictor

    predictor = Predictor(run_dir)
    generator = hasattr(predictor, "continuations")
    values: dict[str, float] = {}
    if LATENCY_METRICS & wanted:
        timings = prediction_times_ms(predictor)
        latency = {
            "latency_ms": statistics.median(timings),
            # The 95th percentile of the timings, interpolated between the two nearest as NumPy does.
            "latency_p95_ms": statistics.quantiles(timings, n=20, method="inclusive")[-1],
        }
        values = {name: value for name, value in latency.items() if name in wanted}
    if "inference_throughput" in wanted:
        # A classifier's latency is already the time of one whole prediction; a text generator's
        # is per token, so its whole predictions are timed apart.
        whole_ms = values["latency_ms"] if "latency_ms" in values and not generator else None
        values["inference_throughput"] = 1000 / (whole_ms or median_prediction_ms(predictor, per_token=False))
    if not generator:  # a classifier: it generates no text
        return values
    if BASE_METRICS & wanted:
        values |= {name: value for name, value in predictor.against_base().items() if name in wanted}
    if ANSWER_METRICS & wanted:
        values |= {name: value for name, value in predictor.answer_scores().items() if name in wanted}
    if PROMPT_LOSS in wanted:
        values |= predictor.prompt_loss_tokens()
    if "time_to_first_token_ms" in wanted:
        values["time_to_first_token_ms"] = median_prediction_ms(predictor, max_new_tokens=1)
    if "generation_tokens_per_second" in wanted or ngram_sizes:
        start = time.perf_counter()
        samples = predictor.continuations(CONTINUATIONS, CONTINUATION_TOKENS)
        seconds = time.perf_counter() - start
        values["generation_tokens_per_second"] = sum(sample["tokens"] for sample in samples) / seconds
        for n in ngram_sizes:
            values[f"max_{n}gram_repeats"] = max(most_repeated_ngram(s["completion"], n) for s in samples)
    return values


def longest_rise(evaluations: list[dict], training: list[dict], *, while_training_falls: bool) -> int:
    """The most evaluations in a row whose validation loss rose over the one before, each (with
    `while_training_falls`) while the training loss, as last logged by then, fell: overfitting."""
    steps = [r["step"] for r in training]  # in order: the log is appended step by step
    longest = streak = 0
    previous: tuple[float, float] | None = None
    for record in evaluations:
        last = bisect.bisect_right(steps, record["step"]) - 1
        current = (record["eval_loss"], training[last]["loss"] if last >= 0 else math.nan)
        rose = previous is not None and current[0] > previous[0]
        if rose and while_training_falls:
            rose = current[1] < previous[1]
        streak = streak + 1 if rose else 0
        longest = max(longest, streak)
        previous = current
    return longest


def measure_split_overlap(run_dir: Path) -> int:
    """Validation examples of the run's data that share what identifies them with a training
    example: the project's data.py yields that for each example of each split (its content, so an
    exact copy counts; for tiles, their scene)."""
    from data import split_contents
    from loading import count_shared

    return count_shared(*split_contents(Config.load(run_dir / "config.json")))


def most_repeated_ngram(text: str, n: int) -> int:
    """How often the most frequent run of n words occurs in `text` (0 when it has fewer)."""
    words = text.split()
    return max(Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1)).values(), default=0)


def median_prediction_ms(
    predictor: Predictor, samples: int = LATENCY_SAMPLES, *, per_token: bool = True, **options: int
) -> float:
    """Median wall time of one prediction as the server makes it: see prediction_times_ms."""
    return statistics.median(prediction_times_ms(predictor, samples, per_token=per_token, **options))


def prediction_times_ms(
    predictor: Predictor, samples: int = LATENCY_SAMPLES, *, per_token: bool = True, **options: int
) -> list[float]:
    """Wall times of `samples` predictions as the server makes them (per generated token for text
    generation, unless `per_token` is False: then of the whole prediction), after a few warm-up
    calls. `options` go to `predict`: max_new_tokens=1 times a prompt's way to its first token."""
    inputs = predictor.sample_inputs(samples + 3)
    for example in inputs[:3]:
        predictor.predict(example, **options)
    timings = []
    for example in inputs[3:]:
        start = time.perf_counter()
        result = predictor.predict(example, **options)
        tokens = max(result.get("tokens", 1), 1) if per_token else 1
        timings.append((time.perf_counter() - start) * 1000 / tokens)
    return timings


def check_run(run_dir: Path, spec_path: Path) -> list[Gate]:
    """Judge every machine-checkable gate of the spec on the run."""
    gates = read_gates(spec_path)
    observed = measure(run_dir, {gate.metric for gate in gates})
    for gate in gates:
        if gate.metric in observed:
            gate.judge(observed[gate.metric])
    return gates


def all_passed(gates: list[Gate]) -> bool:
    """No gate failed ("not measured" is not a failure)."""
    return all(gate.status != "fail" for gate in gates)


def gates_as_json(gates: list[Gate]) -> str:
    return json.dumps([gate.as_dict() for gate in gates], indent=2)
