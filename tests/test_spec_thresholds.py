"""Reading machine-checkable thresholds out of CRPG prose, phrasing by phrasing."""

from __future__ import annotations

import pytest

from ccpt.specs import list_builtin_specs
from ccpt.specs.model import CrpgItem, TaskSpec, Threshold, metric_unit
from ccpt.specs.thresholds import extract_threshold, higher_is_better, normalize, read_missing_thresholds

# (section, text, metric, op, value): each a phrasing a spec author actually writes.
PHRASINGS = [
    # The issue's own examples.
    ("rewards", "Achieve >90% top-1 accuracy", "accuracy", ">=", 0.9),
    ("constraints", "<50ms per image", "latency_ms", "<", 50),
    ("constraints", "Model size under 100MB", "model_size_mb", "<", 100),
    ("penalties", "Overfitting (>5% train-val gap)", "train_val_gap", ">", 0.05),
    ("rewards", "Macro-F1 ≥ 0.85", "macro_f1", ">=", 0.85),
    # Percentages become fractions.
    ("rewards", "Accuracy of at least 92%", "accuracy", ">=", 0.92),
    ("rewards", "Recall   ≥   95 %", "recall", ">=", 0.95),
    ("rewards", "mIoU above 70%", "miou", ">=", 0.7),
    ("rewards", "Exact match 75 or better", "exact_match", ">=", 0.75),
    ("rewards", "MFU of at least 45%", "mfu", ">=", 0.45),
    ("rewards", "Win rate — at least 60% vs the base model", "win_rate", ">=", 0.6),
    ("constraints", "Train at most 1% of parameters", "trainable_params_fraction", "<=", 0.01),
    (
        "constraints",
        "Trainable parameters 0.1\u20131% of parameters",
        "trainable_params_fraction",
        "<=",
        0.01,
    ),
    ("constraints", "No more than 2% accuracy drop on the original benchmark", "accuracy_drop", "<=", 0.02),
    (
        "penalties",
        "Catastrophic forgetting (more than 2% drop on general benchmarks)",
        "accuracy_drop",
        ">",
        0.02,
    ),
    ("penalties", "Accuracy below 80%", "accuracy", "<", 0.8),
    # Plain fractions and scores.
    ("rewards", "Accuracy of at least 0.9", "accuracy", ">=", 0.9),
    ("rewards", "Entity-level F1 \u2013 at least 0.85", "f1", ">=", 0.85),
    ("rewards", "mAP@0.5 ≥ 0.5 on COCO val", "map", ">=", 0.5),
    ("rewards", "BLEU-4 > 30", "bleu", ">=", 30),
    ("rewards", "CIDEr ≥ 1.0 on the Karpathy test split", "cider", ">=", 1.0),
    ("rewards", "Perplexity below 20 on the held-out set", "perplexity", "<", 20),
    ("rewards", "Eval loss < 6.0", "eval_loss", "<", 6.0),
    ("rewards", "ResNet-50 reaches 76% accuracy", "accuracy", ">=", 0.76),
    # Time: ms and s to milliseconds, minutes and hours to hours.
    ("constraints", "Latency must not exceed 50 ms", "latency_ms", "<=", 50),
    ("constraints", "Inference latency: 50 ms or less", "latency_ms", "<=", 50),
    ("constraints", "p95 latency < 0.2 s", "latency_p95_ms", "<", 200),
    ("penalties", "Latency above 80 ms at the 95th percentile", "latency_p95_ms", ">", 80),
    ("constraints", "Median latency under 50 ms per frame", "latency_ms", "<", 50),
    ("constraints", "sub-50ms latency", "latency_ms", "<", 50),
    ("penalties", "Latency above 100ms", "latency_ms", ">", 100),
    ("constraints", "Training time ≤ 2 hours on one GPU", "training_hours", "<=", 2),
    ("constraints", "Training finishes in under 30 minutes on a laptop CPU", "training_hours", "<", 0.5),
    ("constraints", "Within 8 GPU hours", "gpu_hours", "<=", 8),
    # Sizes: MB/GB for the model, GB/GiB for memory.
    ("constraints", "Model size under 1.5 GB", "model_size_mb", "<", 1500),
    ("constraints", "Memory budget: 24 GB", "gpu_memory_gb", "<=", 24),
    ("constraints", "Fits in 16GB of GPU memory", "gpu_memory_gb", "<=", 16),
    ("constraints", "Peak memory no more than 40 GiB", "gpu_memory_gb", "<=", 40),
    ("constraints", "Checkpoint no larger than 500 MB", "model_size_mb", "<=", 500),
    # Counts, money, rates.
    ("constraints", "Under 7B parameters", "parameters_m", "<", 7000),
    ("constraints", "Base model under 400M parameters", "parameters_m", "<", 400),
    ("constraints", "Cloud cost under $500", "cost_usd", "<", 500),
    ("constraints", "Cloud cost under $2,000", "cost_usd", "<", 2000),
    ("rewards", "Throughput of at least 1,000 images/s", "throughput", ">=", 1000),
    ("rewards", "Throughput of at least 100 images/s", "throughput", ">=", 100),
    ("rewards", "Training throughput of at least 500 samples/s", "throughput", ">=", 500),
    ("rewards", "Training throughput of at least 800 images/s on the serving GPU", "throughput", ">=", 800),
    # The trained model's predictions per second are not the training loop's samples per second.
    ("rewards", "Throughput of at least 20 images/s at inference", "inference_throughput", ">=", 20),
    ("rewards", "Inference throughput above 50 images/s", "inference_throughput", ">=", 50),
    (
        "constraints",
        "At least 100 predictions per second when serving on CPU",
        "inference_throughput",
        ">=",
        100,
    ),
    ("penalties", "Serving throughput below 10 requests/s", "inference_throughput", "<", 10),
    ("rewards", "Throughput of 200 images/s or more when serving", "inference_throughput", ">=", 200),
    ("rewards", "≥ 2000 tokens/s on one H200", "tokens_per_second", ">=", 2000),
    # What a trained model generates is not what training gets through.
    (
        "rewards",
        "At least 1,000 tokens/s generation throughput on one GPU",
        "generation_tokens_per_second",
        ">=",
        1000,
    ),
    ("constraints", "Time to first token under 200 ms on one GPU", "time_to_first_token_ms", "<", 200),
    ("constraints", "TTFT below 0.5 s", "time_to_first_token_ms", "<", 500),
    # Unicode signs and ASCII spellings of them.
    ("constraints", "latency ≤ 40ms", "latency_ms", "<=", 40),
    ("constraints", "latency =< 40ms", "latency_ms", "<=", 40),
    ("rewards", "accuracy => 0.9", "accuracy", ">=", 0.9),
    # The first number with a metric wins; a metric word across a comma does not count.
    ("rewards", "Use 4 GPUs, accuracy >= 0.9", "accuracy", ">=", 0.9),
    ("rewards", "Achieve 90% accuracy and 50 ms latency", "accuracy", ">=", 0.9),
    # A bare number takes the metric's natural direction; penalties flip it.
    ("rewards", "Validation accuracy 93", "accuracy", ">=", 0.93),
    ("penalties", "Latency 200 ms", "latency_ms", ">", 200),
    # No number, yet a run can count them: losses that are no longer numbers.
    ("penalties", "Loss becoming NaN or inf at any step", "nonfinite_losses", ">", 0),
    ("penalties", "Training loss diverging to infinity", "nonfinite_losses", ">", 0),
    ("constraints", "No NaN losses", "nonfinite_losses", "==", 0),
    ("constraints", "The training loss stays finite", "nonfinite_losses", "==", 0),
    # Held-out examples that are copies of training ones: counted, so no number is needed.
    ("penalties", "Validation images leaking into training", "split_overlap", ">", 0),
    ("penalties", "Evaluation prompts found in the training data", "split_overlap", ">", 0),
    ("penalties", "Test set contamination", "split_overlap", ">", 0),
    ("constraints", "No overlap between the training and validation sets", "split_overlap", "==", 0),
    # Examples of one group (a scene, a camera session, a patient) on both sides of the split.
    ("penalties", "Tiles from the same scene in both train and validation splits", "split_overlap", ">", 0),
    (
        "penalties",
        "Frames from the same camera session in both the training and the validation sets",
        "split_overlap",
        ">",
        0,
    ),
    ("penalties", "Recordings by the same speaker on both sides of the split", "split_overlap", ">", 0),
    ("constraints", "No images of the same patient in both training and test sets", "split_overlap", "==", 0),
    ("rewards", "No tiles from the same scene in both train and held-out splits", "split_overlap", "==", 0),
    ("penalties", "Label leakage from notes of the same patient across splits", "split_overlap", ">", 0),
    ("penalties", "Tiles from the same scene across train/validation splits", "split_overlap", ">", 0),
    # Supervised fine-tuning with its loss on the prompt too: the run counts such targets.
    ("penalties", "Loss computed on the prompt tokens, not only the answers", "prompt_loss_tokens", ">", 0),
    ("penalties", "Prompt tokens counted in the training loss", "prompt_loss_tokens", ">", 0),
    ("constraints", "No loss on the instruction tokens", "prompt_loss_tokens", "==", 0),
    # A classifier stuck on one class.
    ("penalties", "Predicting only the majority class", "predicted_classes", "<=", 1),
    ("penalties", "The model always predicts the same class", "predicted_classes", "<=", 1),
    # A validation loss that keeps rising; with the training loss falling meanwhile, overfitting.
    (
        "penalties",
        "Overfitting: validation loss rising while training loss falls for 3 evaluations in a row",
        "overfitting_evals",
        ">=",
        3,
    ),
    (
        "penalties",
        "Validation loss rising for three consecutive evaluations",
        "rising_val_loss_evals",
        ">=",
        3,
    ),
    (
        "constraints",
        "Validation loss never rises for 2 evaluations in a row",
        "rising_val_loss_evals",
        "<",
        2,
    ),
    # Repetition loops in generated text: the most repeated word n-gram of one continuation.
    (
        "penalties",
        "Repetition loops (the same 4-gram more than 3 times in one continuation)",
        "max_4gram_repeats",
        ">",
        3,
    ),
    ("penalties", "Any 4-gram appearing at least 5 times", "max_4gram_repeats", ">=", 5),
    ("constraints", "No 3-gram repeated more than twice in a sample", "max_3gram_repeats", "<=", 2),
    # A metric on one class, or on the worst class, under the names generated projects record.
    ("rewards", "Recall of at least 88% on drug names", "recall_drug", ">=", 0.88),
    # Accuracy on one kind of chart, the per-type report's figures; "chart questions" is no kind.
    ("penalties", "Accuracy below 50% on stacked bar charts", "accuracy_stacked_bar", "<", 0.5),
    ("rewards", "Accuracy of at least 90% on line charts.", "accuracy_line", ">=", 0.9),
    ("rewards", "Accuracy ≥ 65% on the held-out chart questions", "accuracy", ">=", 0.65),
    ("penalties", "Precision below 80% on any entity type", "worst_class_precision", "<", 0.8),
    ("penalties", "Water IoU below 50%", "iou_water", "<", 0.5),
    ("rewards", "F1 of at least 0.8 for every class", "worst_class_f1", ">=", 0.8),
    ("rewards", "Recall of at least 90% for the person class", "recall_person", ">=", 0.9),
    ("rewards", "Precision at least 0.9 for the CONDITION type", "precision_condition", ">=", 0.9),
    ("rewards", "Recall on Drug-Name spans of at least 0.88", "recall_drug_name", ">=", 0.88),
    ("rewards", "On drug names, recall of at least 88%", "recall_drug", ">=", 0.88),
    ("rewards", "IoU ≥ 0.6 for the road class", "iou_road", ">=", 0.6),
    ("rewards", "Per-class recall ≥ 0.8", "worst_class_recall", ">=", 0.8),
    ("rewards", "Per-class F1 minimum of 0.7", "worst_class_f1", ">=", 0.7),
    ("rewards", "Worst-performing entity type F1 ≥ 0.6", "worst_class_f1", ">=", 0.6),
    ("rewards", "F1 ≥ 0.8 across all 12 entity types", "worst_class_f1", ">=", 0.8),
    # Data, averaging and hardware are no classes; another metric's or number's qualifier is not this one's.
    ("rewards", "Entity-level F1 ≥ 0.85 on the held-out notes", "f1", ">=", 0.85),
    ("rewards", "Macro-F1 ≥ 0.85 on the validation split", "macro_f1", ">=", 0.85),
    ("rewards", "mIoU above 70% on the held-out tiles", "miou", ">=", 0.7),
    ("rewards", "Mean IoU above 70%", "miou", ">=", 0.7),
    ("rewards", "Achieve IoU above 0.7", "miou", ">=", 0.7),
    ("rewards", "F1 ≥ 0.80 on the held-out questions", "f1", ">=", 0.8),
    ("rewards", "Precision of at least 0.9 on held-out entity mentions", "precision", ">=", 0.9),
    ("rewards", "Recall ≥ 0.8 on rare entities", "recall", ">=", 0.8),
    ("rewards", "Precision at least 0.9 on CPU", "precision", ">=", 0.9),
    ("rewards", "Accuracy ≥ 65% on the held-out chart questions", "accuracy", ">=", 0.65),
    ("penalties", "mIoU below 60% on any class", "miou", "<", 0.6),  # worst_class_* is P/R/F1 only
    ("rewards", "F1 ≥ 0.85 overall and recall ≥ 0.9 on drug names", "f1", ">=", 0.85),
    ("rewards", "Recall ≥ 0.9 overall and ≥ 0.8 on drug names", "recall", ">=", 0.9),
    ("rewards", "F1 ≥ 0.85 on the test set; recall ≥ 0.9 on drug names", "f1", ">=", 0.85),
    (
        "constraints",
        "Inference latency under 30 ms per note of 512 tokens on one GPU",
        "latency_ms",
        "<",
        30,
    ),
]


@pytest.mark.parametrize(
    ("section", "text", "metric", "op", "value"), PHRASINGS, ids=[p[1] for p in PHRASINGS]
)
def test_phrasing_becomes_threshold(section: str, text: str, metric: str, op: str, value: float) -> None:
    threshold = extract_threshold(text, section)
    assert threshold is not None, text
    assert (threshold.metric, threshold.op) == (metric, op)
    assert threshold.value == pytest.approx(value)


def test_there_are_at_least_thirty_phrasings() -> None:
    assert len(PHRASINGS) >= 30


NO_THRESHOLD = [
    "Llama-2-7B with 4-bit quantization",
    "8x8 digit images",
    "Train for 3 epochs",
    "Data is scikit-learn's bundled digits (no download at run time)",
    "Use a ResNet-50 backbone",
    "Loss spikes (> 2x the running mean)",
    "Memory budget: [GPU memory] GB",
    "Train only [0.1-1%] of parameters",
    "Hardware: 1x A100",
    "Batch size 32 with fp16",
    "NaN gradients in the encoder",  # only losses are counted
    "Consistent labels across splits",  # no group: "from/of/by the same ..." names one
    "Apply the same normalisation in both training and validation sets",  # the same step, not a group
    "Same-size images in both training and validation sets",  # a shared property, not a group
    "Only one class in the validation split",  # about the data, not the predictions
    "Validation loss rises over 3 evaluations",  # not a streak: "in a row" or "consecutive" makes it one
    "Train for 3 epochs more than 3 times",  # "times" without an n-gram
    "Supervised fine-tuning with loss on the responses only",  # the answers' loss: what is wanted
]


@pytest.mark.parametrize("text", NO_THRESHOLD)
def test_names_counts_and_placeholders_are_not_thresholds(text: str) -> None:
    assert extract_threshold(text, "constraints") is None


def test_notes_of_one_patient_across_splits_are_counted_as_a_shared_group() -> None:
    text = "Label leakage from notes of the same patient across splits"
    assert extract_threshold(text, "penalties") == Threshold("split_overlap", ">", 0.0, "count")
    assert extract_threshold(text, "constraints") == Threshold("split_overlap", "==", 0.0, "count")


def test_inference_throughput_is_samples_per_second_where_higher_is_better() -> None:
    assert metric_unit("inference_throughput") == metric_unit("throughput") == "samples/s"
    assert higher_is_better("inference_throughput")


# Every built-in bullet read as a throughput or a split overlap: only what says so is read as
# inference throughput or as one group (scene, camera session, patient) on both sides of the split.
LIBRARY_SPEEDS_AND_OVERLAPS = {
    ("causal-lm", "Validation files leaking into training"): "split_overlap > 0",
    ("image-classification", "Validation images leaking into training"): "split_overlap > 0",
    ("instruction-tuning", "Evaluation prompts found in the training data"): "split_overlap > 0",
    (
        "object-detection",
        "Frames from the same camera session in both train and validation splits",
    ): "split_overlap > 0",
    (
        "named-entity-recognition",
        "Label leakage from notes of the same patient across splits",
    ): "split_overlap > 0",
    (
        "semantic-segmentation",
        "Throughput of at least 20 images/s at inference",
    ): "inference_throughput >= 20",
    (
        "semantic-segmentation",
        "Tiles from the same scene in both train and validation splits",
    ): "split_overlap > 0",
}


def test_the_library_reads_inference_throughput_and_shared_groups_only_where_it_says_so() -> None:
    read = {
        (spec.id, item.text): str(item.threshold)
        for spec in list_builtin_specs()
        for item in (*spec.constraints, *spec.rewards, *spec.penalties)
        if item.threshold and item.threshold.metric in {"throughput", "inference_throughput", "split_overlap"}
    }
    assert read == LIBRARY_SPEEDS_AND_OVERLAPS


def test_reward_strict_lower_bound_is_an_inclusive_target_but_a_penalty_keeps_it_strict() -> None:
    assert extract_threshold("accuracy over 90%", "rewards") == Threshold("accuracy", ">=", 0.9, "fraction")
    assert extract_threshold("accuracy over 90%", "constraints") == Threshold(
        "accuracy", ">", 0.9, "fraction"
    )


def test_penalty_threshold_is_the_condition_that_triggers_it() -> None:
    threshold = extract_threshold("Overfitting (>5% train-val gap)", "penalties")
    assert threshold is not None
    assert threshold.holds(0.08) and not threshold.holds(0.03)


def test_a_class_metric_is_a_fraction_where_higher_is_better() -> None:
    # A generated project checks recall_drug against the recall it records for the DRUG type.
    assert extract_threshold("Recall of at least 88% on drug names", "rewards") == Threshold(
        "recall_drug", ">=", 0.88, "fraction"
    )
    for name in (
        "recall_drug",
        "f1_condition",
        "precision_b_drug",
        "iou_water",
        "worst_class_f1",
        "accuracy_line",
    ):
        assert metric_unit(name) == "fraction", name
        assert higher_is_better(name), name
    for name in ("worst_class_iou", "recall_", "accuracy_", "worst_class_accuracy"):
        assert metric_unit(name) is None, name
        assert not higher_is_better(name), name
    # Accuracy lost on a benchmark is no kind of input: a fraction where lower is better.
    assert metric_unit("accuracy_drop") == "fraction" and not higher_is_better("accuracy_drop")
    assert higher_is_better("recall") and not higher_is_better("latency_ms")


def test_a_penalty_on_the_worst_class_triggers_when_any_class_falls_below() -> None:
    threshold = extract_threshold("Precision below 80% on any entity type", "penalties")
    assert threshold is not None
    assert threshold.holds(0.7) and not threshold.holds(0.85)


def test_normalize_turns_unicode_signs_and_dashes_into_ascii() -> None:
    assert normalize("a ≥ 1 \u2013 b ≤ 2\u00a0c \u2212 d") == "a >= 1 - b <= 2 c - d"


def test_read_missing_thresholds_fills_only_the_items_without_one() -> None:
    pinned = Threshold("accuracy", ">=", 0.5, "fraction")  # set by hand: kept, though the text says 90%
    spec = TaskSpec(
        id="s",
        title="s",
        task_kind="text-classification",
        rewards=[CrpgItem("Accuracy over 90%", pinned), CrpgItem("Readable code")],
        penalties=[CrpgItem("Predicting only the majority class")],
    )
    read, found = read_missing_thresholds(spec)
    assert found == ["Predicting only the majority class"]
    assert read.rewards == spec.rewards
    assert read.penalties == [
        CrpgItem("Predicting only the majority class", Threshold("predicted_classes", "<=", 1.0, "count"))
    ]
    assert read_missing_thresholds(read) == (read, [])
