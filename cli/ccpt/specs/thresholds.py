"""Reading a machine-checkable threshold out of a CRPG bullet's prose.

"Achieve >90% top-1 accuracy" -> accuracy >= 0.9, "<50ms per image" -> latency_ms < 50,
"Model size under 100MB" -> model_size_mb < 100, "Overfitting (>5% train-val gap)" in PENALTIES
-> train_val_gap > 0.05 (the condition that triggers the penalty), "Loss becoming NaN or inf" in
PENALTIES -> nonfinite_losses > 0. Anti-patterns a run can count are read without a number of
their own (`_COUNTED_READERS`): non-finite losses, validation examples leaking into training or
sharing their group with training ones ("Tiles from the same scene in both train and validation
splits": split_overlap), a classifier predicting only one class (predicted_classes), a validation
loss rising for N evaluations in a row (rising_val_loss_evals, or overfitting_evals when the
training loss falls meanwhile), a word n-gram repeated in one generated continuation
(max_<n>gram_repeats), and a fine-tuning loss taken on the prompt tokens (prompt_loss_tokens).

The reader finds each number in the text (skipping numbers that are part of names such as
ResNet-50, top-1, F1, GPT-2, mAP@0.5 or 4-bit), reads its unit, the comparison words around it
and the nearest metric word, and converts the value to the metric's canonical unit
(`METRIC_UNITS`): percentages become fractions, seconds become milliseconds, GB become MB for
model size, "7B parameters" become 7000 (millions). The first number that names a metric wins.
Throughput is the training loop's samples/s unless the bullet is about the trained model's
predictions ("20 images/s at inference", "when serving", "predictions per second":
inference_throughput), as tokens/s are training's unless generated (generation_tokens_per_second).

Class qualifiers narrow precision, recall and F1 to one class or to the worst class, and IoU to
one class, under the names generated projects record: "Recall of at least 88% on drug names" ->
recall_drug >= 0.88, "F1 of at least 0.8 for every class" -> worst_class_f1 >= 0.8 (so do "on any
entity type", "worst class", "per-class ... minimum"), "Water IoU below 50%" in PENALTIES ->
iou_water < 0.5. A qualifier counts only in the sentence of its metric word and number, before
any other metric word or threshold number; words for data, averaging and hardware ("on the
held-out notes", "Entity-level F1", "mean IoU", "on one GPU") are no classes (`_NOT_A_CLASS`).

Section rules: a bare number takes the metric's natural direction (">= 90% accuracy", "<= 24 GB
memory"); in PENALTIES the direction flips, because a penalty's threshold is what triggers it;
in REWARDS a strict lower bound ("over 90%") is read as an inclusive target (>= 0.9).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import cast

from ccpt.specs.model import (
    CLASS_METRICS,
    METRIC_UNITS,
    Comparison,
    CrpgItem,
    TaskSpec,
    Threshold,
    metric_unit,
)

# Metrics where a larger observed value is better; every other metric is "lower is better". Plain
# names only: higher_is_better() also counts the per-class family (recall_drug, worst_class_f1).
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "top5_accuracy",
        "macro_f1",
        "f1",
        "precision",
        "recall",
        "exact_match",
        "map",
        "miou",
        "dice",
        "bleu",
        "rouge_l",
        "cider",
        "anls",
        "throughput",
        "inference_throughput",
        "tokens_per_second",
        "generation_tokens_per_second",
        "mfu",
        "win_rate",
    }
)

# Metrics measured as a fraction in [0, 1]: "90%" and a bare "90" both mean 0.9 for them. The
# reader decides a number's metric among these plain names first and narrows it to a class after.
FRACTION_METRICS = frozenset(name for name, unit in METRIC_UNITS.items() if unit == "fraction")


def higher_is_better(metric: str) -> bool:
    """Whether a larger observed value is better: the plain names of HIGHER_IS_BETTER, and a
    classification metric on one class or on the worst class (recall_drug, worst_class_f1)."""
    return metric in HIGHER_IS_BETTER or CLASS_METRICS.fullmatch(metric) is not None


_UNICODE = {
    "≥": ">=",
    "⩾": ">=",
    "≤": "<=",
    "⩽": "<=",
    "\uff1e": ">",
    "\uff1c": "<",
    "\u2013": "-",
    "\u2014": "-",
    "\u2012": "-",
    "\u2212": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u00a0": " ",
    "\u202f": " ",
    "\u2009": " ",
    "µ": "u",
    "μ": "u",
    "\u00d7": "x",
}

# Metric words, most specific first; spans covered by an earlier match are not matched again.
# (pattern, metric, case_sensitive)
_METRIC_WORDS: list[tuple[str, str, bool]] = [
    (r"top[- ]?5(?:[- ]accuracy|[- ]acc)?", "top5_accuracy", False),
    (r"top[- ]?1(?:[- ]accuracy|[- ]acc)?", "accuracy", False),
    (r"macro[- ]?(?:averaged[- ])?f[- ]?1(?:[- ]score)?", "macro_f1", False),
    (r"\bmAP\b|mean average precision|\bAP@|\bAP50\b|\bbox AP\b", "map", True),
    (r"\bmiou\b|mean iou|\biou\b|intersection[- ]over[- ]union", "miou", False),
    (r"\bdice\b", "dice", False),
    (r"exact[- ]match", "exact_match", False),
    (r"\bEM\b", "exact_match", True),
    (r"\banls\b", "anls", False),
    (r"\bf[- ]?1\b(?:[- ]score)?|\bf-score\b|\bf-measure\b", "f1", False),
    (
        r"(?<!mixed )(?<!mixed-)(?<!half )(?<!full )(?<!numeric )(?<!numerical )\bprecision\b",
        "precision",
        False,
    ),
    (r"\brecall\b", "recall", False),
    (r"\bbleu(?:-4)?\b", "bleu", False),
    (r"\brouge(?:[- ]?l)?\b", "rouge_l", False),
    (r"\bcider\b", "cider", False),
    (r"\bperplexity\b|\bppl\b", "perplexity", False),
    (
        r"(?:eval(?:uation)?|validation|val|test|held[- ]out)[ _-]?(?:cross[- ]entropy[ _-]?)?loss|\bloss\b",
        "eval_loss",
        False,
    ),
    (
        r"train(?:ing)?[- /]?(?:vs\.? ?)?(?:val(?:idation)?|test|eval)[- ]?(?:accuracy[- ]|loss[- ])?gap"
        r"|generali[sz]ation gap|over-?fitting|\boverfits?\b",
        "train_val_gap",
        False,
    ),
    (
        r"accuracy drop|drop in accuracy|\bforgetting\b|\bregression on\b|\bdegradation\b|\bdrops?\b",
        "accuracy_drop",
        False,
    ),
    (r"\bwin[- ]rate\b|\bwins? against\b|\bpreferred\b", "win_rate", False),
    (r"\bmfu\b|model flops utili[sz]ation", "mfu", False),
    (r"\baccuracy\b|\bacc\b", "accuracy", False),
    (r"time to first token|\bttft\b", "time_to_first_token_ms", False),
    (
        r"\blatency\b|inference time|response time"
        r"|\bper (?:image|sample|request|query|token|page|example|document|frame|batch)\b",
        "latency_ms",
        False,
    ),
    (r"tokens? per second|\btok(?:ens?)?/s", "tokens_per_second", False),
    (
        r"\bthroughput\b|\bqps\b|(?:images?|samples?|requests?|examples?|predictions?) per second",
        "throughput",
        False,
    ),
    (r"gpu[- ]hours?|gpu-h\b", "gpu_hours", False),
    (
        r"training time|train(?:ing|s|ed)? (?:in|within|for)\b|wall[- ]?clock|time budget|training budget"
        r"|\bhours? of training",
        "training_hours",
        False,
    ),
    (
        r"model size|model file|\bcheckpoints?\b|\bweights\b|file size|on disk|disk size|artifact"
        r"|\bexport(?:ed)?\b",
        "model_size_mb",
        False,
    ),
    (r"gpu memory|\bvram\b|memory budget|\bmemory\b|\bram\b|\bhbm\b", "gpu_memory_gb", False),
    (
        r"trainable (?:parameters|params|weights)"
        r"|of (?:the )?(?:model'?s? |base model'?s? )?(?:parameters|params|weights)",
        "trainable_params_fraction",
        False,
    ),
    (r"\bparameters\b|\bparams\b", "parameters_m", False),
    (r"\bcost\b|\bbudget\b|\bspend\b|\bdollars\b|\busd\b", "cost_usd", False),
]
_METRIC_PATTERNS = [(re.compile(p, 0 if cs else re.IGNORECASE), m) for p, m, cs in _METRIC_WORDS]

# Comparison words. At one position the earliest alternative wins, so "no more than" is read
# before "more than" and "does not exceed" before "exceed".
_COMPARISON_BEFORE = re.compile(
    r"(?P<ge>>=|\bat least\b|\bno less than\b|\bnot less than\b|\bno fewer than\b|\bnot below\b"
    r"|\bnot under\b|\bnot lower than\b|\bminimum(?: of)?\b|\bmin\b\.?|\breach(?:es|ing)?\b"
    r"|\battain(?:s|ing)?\b|\bhit(?:s|ting)?\b|\bachieve(?:s|d)?\b)"
    r"|(?P<le><=|\bat most\b|\bno more than\b|\bnot more than\b|\bno greater than\b|\bno higher than\b"
    r"|\bno larger than\b|\bno bigger than\b|\bno slower than\b|\b(?:does |must |should |do |will )?"
    r"not (?:to )?exceed(?:ing)?\b|\bnever exceeds?\b|\bmaximum(?: of)?\b|\bmax\b\.?|\bup to\b|\bwithin\b"
    r"|\bcapped at\b|\blimit(?:ed)? (?:of|to)\b|\bbudget of\b|\bfits? (?:in(?:to)?|on|within)\b)"
    r"|(?P<gt>>|\bover\b|\babove\b|\bmore than\b|\bgreater than\b|\bhigher than\b|\bexceed(?:s|ing)?\b"
    r"|\bbeyond\b|\bbetter than\b|\bbeats?\b|\boutperforms?\b|\blarger than\b|\bbigger than\b)"
    r"|(?P<lt><|\bunder\b|\bbelow\b|\bless than\b|\blower than\b|\bfewer than\b|\bsmaller than\b"
    r"|\bfaster than\b|\bshorter than\b|\bsub-|\bsub\b)"
    r"|(?P<eq>==|=|\bexactly\b)"
)
_COMPARISON_AFTER = re.compile(
    r"^\s*(?:(?P<ge>\+|or (?:more|higher|above|better|greater|over)\b|minimum\b|at minimum\b|at least\b)"
    r"|(?P<le>or (?:less|lower|below|fewer|under|faster|smaller)\b|maximum\b|max\b|at most\b|at the most\b))"
)
_OPS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "eq": "=="}

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_UNIT = (
    r"%|percent(?:age points?)?\b|pp\b|percentage points?\b"
    r"|(?:tokens?|tok)\s*/\s*s(?:ec(?:ond)?)?\b|tokens? per second\b"
    r"|(?:images?|imgs?|samples?|examples?|requests?|reqs?|queries|sequences|predictions?|preds?|it)"
    r"\s*/\s*s(?:ec(?:ond)?)?\b"
    r"|(?:images?|samples?|examples?|requests?|queries|predictions?) per second\b|qps\b"
    r"|gpu[- ]hours?\b|gpu-h\b"
    r"|ms\b|milliseconds?\b|msec\b|us\b|microseconds?\b|s\b|secs?\b|seconds?\b"
    r"|min\b|mins\b|minutes?\b|h\b|hrs?\b|hours?\b|days?\b"
    r"|kib\b|mib\b|gib\b|tib\b|kb\b|mb\b|gb\b|tb\b"
    r"|k\b|m\b|b\b|bn\b|thousand\b|million\b|billion\b"
    r"|usd\b|dollars?\b|x\b"
)
_QUANTITY = re.compile(
    rf"(?P<cur>\$\s*)?(?P<num>{_NUMBER})(?:\s*(?P<unit1>%))?"
    rf"(?:\s*(?:-|to|and)\s*\$?(?P<num2>{_NUMBER}))?"
    rf"(?:\s*(?P<unit>{_UNIT}))?",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[,;:()\[\]]|\.\s")
# Where a metric word stops belonging to a number: "Use 4 GPUs, accuracy >= 0.9".
_METRIC_BREAK = re.compile(r"[,;()]|\.\s")
# A bare number followed by one of these counts things; it is not a threshold ("3 epochs").
_COUNT_NOUN = re.compile(
    r"\s*(?:epochs?|steps?|classes|class|gpus?|nodes?|layers?|heads?|runs?|seeds?|images?|samples?"
    r"|examples?|tokens?|words?|documents?|docs?|labels?|languages?|instances?|hosts?|workers?|folds?"
    r"|iterations?|batch(?:es)?|shots?|times|cores?|cpus?|rows?|columns?|entities|entity|categories"
    r"|points?|turns?|pages?|frames?|users?|people|items?|files?|levels?|stages?|blocks?|experts?"
    r"|evaluations?|evals?|checks?|rounds?|attempts?|retries|retry|repeats?|occurrences?|in a row)\b",
    re.IGNORECASE,
)
# Metrics a number without a unit may not measure: "train for 3 ..." is not 3 hours.
_NEEDS_UNIT = frozenset({"training_hours", "gpu_hours", "cost_usd", "parameters_m"})
_MAX_DISTANCE = 60
_EXPLICIT = re.compile(
    r"\{\s*(?P<metric>[a-z][a-z0-9_]*)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>-?(?:\d+(?:\.\d*)?|\.\d+)(?:e-?\d+)?)\s*\}\s*$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]*\]")
_NONFINITE = re.compile(r"\bnan\b|\binf(?:inite|inity)?\b|\bfinite\b", re.IGNORECASE)  # non-finite too
_LOSS_WORD = re.compile(r"\bloss(?:es)?\b", re.IGNORECASE)
_HELD_OUT = r"(?:validation|val|test|eval(?:uation)?|held[- ]out)"
# Held-out examples that also sit in the training data: "Validation images leaking into training",
# "Evaluation prompts found in the training data", "test set contamination"; or that share their
# group with training examples: "Tiles from the same scene in both train and validation splits",
# "Recordings by the same speaker on both sides of the split", "Label leakage from notes of the
# same patient across splits" (each project's data says what identifies an example: its content,
# for tiles their scene, for the built-in clinical notes their patient). "From/of/by the same"
# names the group; without it, "across splits" or "in both splits" names none ("the same
# preprocessing in both splits", "consistent labels across splits").
_BOTH_SPLITS = (
    rf"(?:in|across|on) both (?:the )?(?:train(?:ing)?(?:[ -](?:set|split|data))?\s*(?:and|&|/)\s*(?:the )?"
    rf"{_HELD_OUT}|{_HELD_OUT}(?:[ -](?:set|split|data))?\s*(?:and|&|/)\s*(?:the )?train(?:ing)?)\b"
    r"|\bon both sides of (?:the|a|each|every) (?:[\w/-]+ )?split\b"
    r"|\bacross (?:the |data )?(?:splits|train(?:ing)?(?:\s*(?:and|/|&)\s*|-)\w+ splits)\b"
)
_LEAKAGE = re.compile(
    rf"\b{_HELD_OUT}(?:[ -]\w+)?\s+(?:leak(?:s|ing|ed)?|(?:also |that are )?(?:found|present|seen|included"
    rf"|appearing|appear)) (?:in|into)(?: the)? train"
    rf"|\b{_HELD_OUT}(?:[ -](?:set|split|data))? (?:leakage|contamination)"
    rf"|\bcontamination of the {_HELD_OUT}\b"
    rf"|\boverlap between (?:the )?train(?:ing)?(?: \w+)? and (?:the )?{_HELD_OUT}"
    rf"|\b(?:from|of|by) the same [^,;.]{{1,40}}?\b(?:{_BOTH_SPLITS})",
    re.IGNORECASE,
)
# A throughput bullet about the trained model's predictions, not the training loop's speed:
# "20 images/s at inference", "inference throughput", "when serving", "predictions per second",
# "100 requests/s". "Training throughput" stays the training loop's even next to such words.
_INFERENCE = re.compile(
    r"\binfer(?:ence|ring)\b|\bserv(?:e|es|ed|ing|er)\b|\bpredict(?:s|ing|ions?)?\b|\bpreds?\b"
    r"|\brequests?\b|\breqs?\b|\bqps\b|\bqueries\b",
    re.IGNORECASE,
)
_TRAINING_SPEED = re.compile(r"\btrain(?:ing)?[- ](?:throughput|speed)\b", re.IGNORECASE)
# A classifier whose every prediction is one class: "Predicting only the majority class".
_SINGLE_CLASS = re.compile(
    r"\b(?:only|always|just)\b(?:\s+\w+){0,3}?\s+(?:majority|most (?:common|frequent)|dominant|single|one"
    r"|same)[ -](?:class|label|category)\b",
    re.IGNORECASE,
)
_PREDICT_WORD = re.compile(r"\bpredict\w*|\boutput\w*|\bclassif\w*", re.IGNORECASE)
# "validation loss rising ... for 3 evaluations in a row"
_RISING_LOSS = re.compile(
    rf"\b{_HELD_OUT}[ _-]?loss(?:es)?\s+(?:is |keeps |keeps on |never |does not |must not |should not )?"
    r"(?:ris\w*|increas\w*|go(?:es|ing)? up|climb\w*|grow\w*)",
    re.IGNORECASE,
)
_TRAINING_LOSS_FALLING = re.compile(
    r"\btrain(?:ing)?[ _-]?loss(?:es)?\s+(?:is |keeps )?(?:fall\w*|fell|decreas\w*|drop\w*|go(?:es|ing)? down"
    r"|improv\w*|shrink\w*)",
    re.IGNORECASE,
)
# "the same 4-gram more than 3 times in one continuation": repetition loops in generated text,
# the n-gram named before or after how often it may occur.
_NGRAM = r"\b(?P<n>[1-9])[- ]?grams?\b"
_TIMES = r"(?:more than|over|above|(?P<least>at least))\s+(?P<count>\d+ times|once|twice)\b"
_REPEATED_NGRAM_FORMS = tuple(
    re.compile(form, re.IGNORECASE)
    for form in (rf"{_NGRAM}[^.;]{{0,40}}?{_TIMES}", rf"{_TIMES}[^.;]{{0,40}}?{_NGRAM}")
)
_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_IN_A_ROW = re.compile(
    rf"\b(?P<count>\d+|{'|'.join(_COUNT_WORDS)})\s+(?:(?P<consecutive>consecutive|successive)\s+)?"
    r"(?:evaluations?|evals?|validations?|eval(?:uation)? rounds|checks)(?P<row>\s+in a row)?",
    re.IGNORECASE,
)
# Supervised fine-tuning whose loss is taken on the prompt as well as the answer: "Loss computed
# on the prompt tokens as well as the responses", "prompt tokens counted in the loss".
_PROMPT_LOSS = re.compile(
    r"\bloss(?:es)?\b[^,;.]{0,30}?\b(?:on|over|of|from|includ(?:es|ing))(?: the)? (?:prompt|instruction)s?\b"
    r"|\b(?:prompt|instruction)s?[ -]tokens?\b[^,;.]{0,30}?\b(?:in|into)(?: the)? (?:training )?loss\b",
    re.IGNORECASE,
)

_MILLISECONDS = frozenset({"latency_ms", "time_to_first_token_ms"})
_P95 = re.compile(r"\bp95\b|\b95th\b", re.IGNORECASE)  # "p95 latency", "at the 95th percentile"
_TIME_METRICS = _MILLISECONDS | {"training_hours", "gpu_hours"}
_GENERATION = re.compile(r"\bgenerat\w*|\bdecod\w*|\bsampling\b|\binference\b|\bserving\b", re.IGNORECASE)
_TIME_TO_MS = {"us": 0.001, "microsecond": 0.001, "ms": 1.0, "millisecond": 1.0, "msec": 1.0}
_TIME_TO_MS.update({"s": 1000.0, "sec": 1000.0, "second": 1000.0})
_TIME_TO_H = {"min": 1 / 60, "minute": 1 / 60, "h": 1.0, "hr": 1.0, "hour": 1.0, "day": 24.0}
_SIZE_TO_MB = {"kb": 0.001, "kib": 1 / 1024, "mb": 1.0, "mib": 1.0, "gb": 1000.0, "gib": 1024.0}
_SIZE_TO_MB.update({"tb": 1e6, "tib": 1024.0**2})
# GPU memory is quoted in GB and GiB interchangeably ("80 GB H100"): both read as GB.
_SIZE_TO_GB = {"kb": 1e-6, "kib": 1 / 1024**2, "mb": 0.001, "mib": 1 / 1024, "gb": 1.0, "gib": 1.0}
_SIZE_TO_GB.update({"tb": 1000.0, "tib": 1024.0})
_COUNT_TO_M = {"k": 0.001, "thousand": 0.001, "m": 1.0, "million": 1.0, "b": 1000.0, "bn": 1000.0}
_COUNT_TO_M["billion"] = 1000.0

# Class qualifiers. Only these metrics have a per-class form a run records; accuracy, exact match
# and the averaged scores (macro_f1, miou's mean) are about every class at once.
_QUALIFIABLE = frozenset({"precision", "recall", "f1"})
_CLASSES = r"(?:types?|class(?:es)?|labels?|categor(?:y|ies))"
# "on any entity type", "for every class", "across all 12 labels", "in each of the categories".
_ANY_CLASS = (
    r"\b(?:on|for|across|in|over|of) (?:any|every|each|all)(?: of)?(?: the)?(?: \d+)?"
    rf" (?:[a-z]+[ -])?{_CLASSES}\b"
)
_PER_CLASS = rf"\bper[- ](?:entity[- ])?{_CLASSES}\b"
_MINIMUM = r"\b(?:minimum|min|lowest|worst)\b"
_WORST_CLASS = re.compile(
    rf"{_ANY_CLASS}|\b(?:worst|lowest|weakest)(?:[- ]performing|[- ]scoring)?[- ](?:entity[- ])?{_CLASSES}\b"
    rf"|{_PER_CLASS}.*{_MINIMUM}|{_MINIMUM}.*{_PER_CLASS}",
    re.IGNORECASE,
)
# "per-class recall >= 0.8" bounds every class, so the worst one: per-class right at the metric word.
_PER_CLASS_BEFORE = re.compile(rf"{_PER_CLASS}[- ]$", re.IGNORECASE)
_PER_CLASS_AFTER = re.compile(rf"^[- ]{_PER_CLASS}", re.IGNORECASE)
# "on drug names", "for the person class", "on DRUG entities": one class, the word before the noun.
_ONE_CLASS = re.compile(
    r"\b(?:on|for)(?: the)? (?P<name>[a-z][a-z0-9-]*) (?:names?|entities|entity|mentions?|spans?|class|type"
    r"|labels?)\b",
    re.IGNORECASE,
)
# "Accuracy below 50% on stacked bar charts": accuracy on one kind of chart (accuracy_stacked_bar).
_ON_CHART_KIND = re.compile(
    r"\s+(?:on|for) (?:the )?(?P<name>[a-z]+(?:[ -][a-z]+)?) charts?(?=\s*(?:[,;.)]|$))", re.IGNORECASE
)
# "Water IoU": the word right before a plain IoU (not mIoU or mean IoU) names its class.
_CLASS_BEFORE_IOU = re.compile(r"(?<![\w-])(?P<name>[a-z][a-z0-9-]*)[ -]$", re.IGNORECASE)
_PLAIN_IOU = re.compile(r"iou|intersection[- ]over[- ]union", re.IGNORECASE)
# Words in a class's place that are no class. Each group keeps a real phrasing from being read as
# a class: "mean IoU", "entity-level F1", "on the validation split", "on held-out entity mentions",
# "on rare entities", "for every class", "Achieve IoU above 0.7".
_NOT_A_CLASS = frozenset(
    (
        # Articles, quantifiers and sets of classes.
        *("a", "an", "the", "of", "per", "m", "all", "any", "every", "each", "both", "one", "single"),
        *("same", "other", "others", "remaining", "this", "that", "its", "their"),
        *("class", "classes", "type", "types", "label", "labels", "category", "categories"),
        *("entity", "entities", "named", "target", "model"),
        # How a score is averaged, computed or matched.
        *("mean", "average", "averaged", "avg", "overall", "macro", "micro", "weighted", "global"),
        *("frequency-weighted", "total", "per-class", "class-wise", "classwise", "class-level"),
        *("entity-level", "span-level", "token-level", "strict", "lenient", "relaxed", "exact"),
        *("partial", "mask", "box", "bbox", "boundary", "pixel", "pixel-wise", "instance"),
        *("semantic", "panoptic", "segmentation", "worst", "best", "lowest", "highest", "top"),
        *("minimum", "min", "maximum", "max"),
        # The data a score is measured on, and where it runs.
        *("validation", "val", "valid", "dev", "development", "test", "testing", "train", "training"),
        *("eval", "evaluation", "held-out", "heldout", "hold-out", "holdout", "unseen", "seen", "new"),
        *("split", "splits", "set", "sets", "data", "dataset", "notes", "documents", "docs", "tiles"),
        *("images", "questions", "samples", "examples", "sentences", "tokens", "gold", "predicted"),
        *("true", "ground-truth", "labelled", "labeled", "gpu", "gpus", "cpu", "cpus"),
        # Kinds of mentions rather than classes.
        *("rare", "common", "frequent", "infrequent", "minority", "majority", "long", "short"),
        *("nested", "overlapping", "ambiguous", "multi-token", "multi-word", "known", "unknown"),
        *("correct",),
        # Verbs and comparison words that can stand right before "IoU".
        *("achieve", "achieves", "reach", "reaches", "hit", "hits", "attain", "attains", "get"),
        *("gets", "keep", "keeps", "maintain", "maintains", "with", "and", "or", "by", "at"),
        *("least", "most", "above", "below", "over", "under", "than"),
    )
)
# Where the span a qualifier may sit in ends: a new sentence or clause after a semicolon.
_SENTENCE_BREAK = re.compile(r";|\.\s")


@dataclass(frozen=True)
class _MetricWord:
    metric: str
    start: int
    end: int


def normalize(text: str) -> str:
    """Unicode comparison signs and dashes to ASCII, `=>`/`=<` to `>=`/`<=`, whitespace collapsed."""
    for char, replacement in _UNICODE.items():
        text = text.replace(char, replacement)
    text = re.sub(r"=\s*>", ">=", text)
    text = re.sub(r"=\s*<", "<=", text)
    text = re.sub(r">\s+=", ">=", text)
    text = re.sub(r"<\s+=", "<=", text)
    return re.sub(r"\s+", " ", text).strip()


def explicit_threshold(text: str) -> tuple[str, Threshold | None]:
    """A trailing `{metric op value}` pins the threshold by hand; returns (text without it, threshold)."""
    match = _EXPLICIT.search(text)
    if not match:
        return text, None
    metric = match["metric"].lower()
    threshold = Threshold(metric, cast(Comparison, match["op"]), float(match["value"]), metric_unit(metric))
    return text[: match.start()].rstrip(), threshold


def extract_threshold(text: str, section: str = "rewards") -> Threshold | None:
    """The threshold a CRPG bullet states, or None when it names no number with a known metric.

    `section` is one of constraints, rewards, penalties, goal_state (see the module docstring).
    """
    # Placeholders such as "[0.1-1%]" are open parameters, not numbers: blank them out.
    clean = normalize(_PLACEHOLDER.sub(lambda m: " " * len(m.group()), text))
    words = _metric_words(clean)
    previous_end = 0
    for match in _QUANTITY.finditer(clean):
        start, end = match.span()
        if _part_of_a_name(clean, start, end, match):
            previous_end = end
            continue
        threshold = _threshold_for(clean, match, words, previous_end, section)
        previous_end = end
        if threshold:
            return threshold
    for read_counted in _COUNTED_READERS:
        threshold = read_counted(clean, section)
        if threshold:
            return threshold
    return None


def read_missing_thresholds(spec: TaskSpec) -> tuple[TaskSpec, list[str]]:
    """The spec with a threshold on every constraint, reward and penalty that had none but that
    this reader now finds one in (a spec recorded by an older ccpt), and those items' texts."""
    found: list[str] = []

    def read(items: list[CrpgItem], section: str) -> list[CrpgItem]:
        updated = []
        for item in items:
            threshold = None if item.threshold else extract_threshold(item.text, section)
            if threshold:
                found.append(item.text)
                item = CrpgItem(item.text, threshold)
            updated.append(item)
        return updated

    read_spec = replace(
        spec,
        constraints=read(spec.constraints, "constraints"),
        rewards=read(spec.rewards, "rewards"),
        penalties=read(spec.penalties, "penalties"),
    )
    return (read_spec if found else spec), found


def _counted(
    metric: str, penalty_op: Comparison, requirement_op: Comparison, value: float, section: str
) -> Threshold:
    """A threshold on something a run counts: a penalty triggers on `penalty_op`, a constraint or
    reward asks for `requirement_op`."""
    op = penalty_op if section == "penalties" else requirement_op
    return Threshold(metric, op, value, metric_unit(metric))


def _nonfinite_loss_threshold(text: str, section: str) -> Threshold | None:
    """A loss "becoming NaN or inf" names no number, yet a run can count its non-finite losses: as
    a penalty it triggers on any (> 0); as a constraint or reward it asks for none (== 0)."""
    if not (_NONFINITE.search(text) and _LOSS_WORD.search(text)):
        return None
    return _counted("nonfinite_losses", ">", "==", 0.0, section)


def _leakage_threshold(text: str, section: str) -> Threshold | None:
    """Held-out examples leaking into training, or examples of one group (a scene, a camera
    session) in both splits: the run counts validation examples that share what identifies them
    with a training example (an exact copy, or for tiles their scene); a penalty triggers on any,
    a requirement asks for none."""
    if not _LEAKAGE.search(text):
        return None
    return _counted("split_overlap", ">", "==", 0.0, section)


def _single_class_threshold(text: str, section: str) -> Threshold | None:
    """ "Predicting only the majority class": the run counts the classes its predictions use."""
    if not (_SINGLE_CLASS.search(text) and _PREDICT_WORD.search(text)):
        return None
    return _counted("predicted_classes", "<=", ">", 1.0, section)


def _rising_loss_threshold(text: str, section: str) -> Threshold | None:
    """A validation loss rising "for 3 evaluations in a row" (while the training loss falls: then
    it is overfitting): the run finds its longest such streak of evaluations."""
    streak = _IN_A_ROW.search(text)
    if not (_RISING_LOSS.search(text) and streak and (streak["consecutive"] or streak["row"])):
        return None
    count = streak["count"].lower()
    length = float(_COUNT_WORDS.get(count) or int(count))
    metric = "overfitting_evals" if _TRAINING_LOSS_FALLING.search(text) else "rising_val_loss_evals"
    return _counted(metric, ">=", "<", length, section)


def _repeated_ngram_threshold(text: str, section: str) -> Threshold | None:
    """ "The same 4-gram more than 3 times in one continuation": the run samples continuations and
    counts how often the most repeated word 4-gram of each occurs (max_4gram_repeats)."""
    match = next(filter(None, (form.search(text) for form in _REPEATED_NGRAM_FORMS)), None)
    if not match:
        return None
    count = match["count"].lower()
    times = float({"once": 1, "twice": 2}.get(count) or int(count.split()[0]))
    metric = f"max_{match['n']}gram_repeats"
    if match["least"]:
        return _counted(metric, ">=", "<", times, section)
    return _counted(metric, ">", "<=", times, section)


def _prompt_loss_threshold(text: str, section: str) -> Threshold | None:
    """The loss taken on the prompt tokens too: the run counts the training targets that lie in
    an instruction (prompt_loss_tokens); a penalty triggers on any, a requirement asks for none."""
    if not _PROMPT_LOSS.search(text):
        return None
    return _counted("prompt_loss_tokens", ">", "==", 0.0, section)


_COUNTED_READERS = (
    _nonfinite_loss_threshold,
    _prompt_loss_threshold,
    _leakage_threshold,
    _single_class_threshold,
    _rising_loss_threshold,
    _repeated_ngram_threshold,
)


def _metric_words(text: str) -> list[_MetricWord]:
    found: list[_MetricWord] = []
    for pattern, metric in _METRIC_PATTERNS:
        for match in pattern.finditer(text):
            if any(w.start < match.end() and match.start() < w.end for w in found):
                continue
            found.append(_MetricWord(metric, match.start(), match.end()))
    return sorted(found, key=lambda w: w.start)


def _part_of_a_name(text: str, start: int, end: int, match: re.Match[str]) -> bool:
    """ResNet-50, top-1, F1, fp16, GPT-2, Llama-2-7B, mAP@0.5, v1.2, 8x8, 4-bit, 3rd: not thresholds."""
    if match["cur"]:
        return False
    before = text[max(0, start - 2) : start].rjust(2)
    if before[1].isalpha() or before[1] in "@_./#":
        return True
    if before[1] == "-" and before[0].isalnum() and text[max(0, start - 4) : start].lower() != "sub-":
        return True
    after = text[end : end + 2].ljust(2)
    if after[0].isalpha() or after[0] in "_@":
        return True
    # "4-bit", "8-layer", "12-head": a number joined to a word by a hyphen is an adjective.
    return after[0] == "-" and after[1].isalpha()


def _clause_start(text: str, position: int, previous_end: int) -> int:
    start = previous_end
    for found in _CLAUSE_BREAK.finditer(text, previous_end, position):
        start = found.end()
    return start


def _comparison(text: str, match: re.Match[str], previous_end: int) -> str | None:
    window = text[_clause_start(text, match.start(), previous_end) : match.start()].lower()
    last = None
    for found in _COMPARISON_BEFORE.finditer(window):
        last = found
    if last:
        return _OPS[last.lastgroup or "eq"]
    after = _COMPARISON_AFTER.match(text[match.end() :].lower())
    if after:
        return _OPS[after.lastgroup or "eq"]
    return None


def _nearest(
    text: str, words: list[_MetricWord], start: int, end: int, allowed: Collection[str] | None
) -> str | None:
    """The metric of the word closest to a number in the same clause (see _nearest_word)."""
    word = _nearest_word(text, words, start, end, allowed)
    return word.metric if word else None


def _nearest_word(
    text: str, words: list[_MetricWord], start: int, end: int, allowed: Collection[str] | None
) -> _MetricWord | None:
    """The metric word closest to a number in the same clause (and at most _MAX_DISTANCE away)."""
    best: _MetricWord | None = None
    best_distance = _MAX_DISTANCE + 1
    for word in words:
        if allowed is not None and word.metric not in allowed:
            continue
        gap = text[word.end : start] if word.end <= start else text[end : word.start]
        if _METRIC_BREAK.search(gap):
            continue
        distance = max(word.start - end, start - word.end, 0)
        if distance < best_distance:
            best, best_distance = word, distance
    return best


def _unit_key(unit: str) -> str:
    unit = unit.lower().strip()
    unit = re.sub(r"\s+", " ", unit)
    return unit[:-1] if unit.endswith("s") and unit not in {"s", "ms", "us", "bs"} else unit


def _metric_and_scale(
    text: str, unit: str, words: list[_MetricWord], start: int, end: int, currency: bool
) -> tuple[str | None, float]:
    """Which metric a number measures and the factor to its canonical unit."""
    metric: str | None
    key = _unit_key(unit) if unit else ""
    if "/" in unit or "per second" in unit.lower():
        key = unit.lower()
    if currency or key in {"usd", "dollar"}:
        return "cost_usd", 1.0
    if key in {"%", "percent", "pp", "percentage point", "percentage points", "percentage"}:
        return _nearest(text, words, start, end, FRACTION_METRICS), 0.01
    if key.startswith(("token", "tok")):
        # Tokens a trained model generates per second, or tokens training gets through per second.
        return ("generation_tokens_per_second" if _GENERATION.search(text) else "tokens_per_second"), 1.0
    if "/s" in key.replace(" ", "") or key.endswith("per second") or key == "qp":
        return "throughput", 1.0
    if key.startswith("gpu"):
        return "gpu_hours", 1.0
    if key in _TIME_TO_MS:
        metric = _nearest(text, words, start, end, _TIME_METRICS) or "latency_ms"
        return metric, _TIME_TO_MS[key] if metric in _MILLISECONDS else _TIME_TO_MS[key] / 3.6e6
    if key in _TIME_TO_H:
        metric = _nearest(text, words, start, end, _TIME_METRICS) or "training_hours"
        return metric, _TIME_TO_H[key] * 3.6e6 if metric in _MILLISECONDS else _TIME_TO_H[key]
    if key in _SIZE_TO_MB:
        metric = _nearest(text, words, start, end, {"model_size_mb", "gpu_memory_gb"})
        if metric is None:
            metric = "model_size_mb" if key in {"kb", "kib", "mb", "mib"} else "gpu_memory_gb"
        return metric, _SIZE_TO_MB[key] if metric == "model_size_mb" else _SIZE_TO_GB[key]
    if key in _COUNT_TO_M:
        metric = _nearest(
            text, words, start, end, {"parameters_m", "throughput", "tokens_per_second", "cost_usd"}
        )
        if metric == "parameters_m":
            return metric, _COUNT_TO_M[key]
        if metric:
            return metric, _COUNT_TO_M[key] * 1e6
        return None, 1.0
    if key == "x":
        return None, 1.0
    return _nearest(text, words, start, end, set(METRIC_UNITS) - _NEEDS_UNIT), 1.0


def _threshold_for(
    text: str, match: re.Match[str], words: list[_MetricWord], previous_end: int, section: str
) -> Threshold | None:
    start, end = match.span()
    unit = match["unit"] or match["unit1"] or ""
    if match["num2"] and match["unit1"] and match["unit"] and match["unit1"] != match["unit"]:
        return None  # "90% and 50 ms" is two quantities, not a range; the first one names no metric
    if not unit and not match["cur"] and _COUNT_NOUN.match(text, end):
        return None
    metric, scale = _metric_and_scale(text, unit, words, start, end, bool(match["cur"]))
    if metric is None:
        return None
    if metric == "throughput" and _INFERENCE.search(text) and not _TRAINING_SPEED.search(text):
        metric = "inference_throughput"
    if metric == "latency_ms" and _P95.search(text):
        metric = "latency_p95_ms"  # "at the 95th percentile": the slow tail, not the median
    low = float(match["num"].replace(",", "")) * scale
    high = float(match["num2"].replace(",", "")) * scale if match["num2"] else None
    if high is not None and high <= low:
        high = None
    if metric in FRACTION_METRICS and not unit:
        # "accuracy of 92" means 92%: a fraction metric is never above 1.
        low = low / 100 if 1 < low <= 100 else low
        high = high / 100 if high is not None and 1 < high <= 100 else high
    metric = _class_qualified(text, words, match, metric)
    higher_better = higher_is_better(metric)
    penalty = section == "penalties"
    op = _comparison(text, match, previous_end)
    if high is not None:
        # A range: a requirement keeps its permissive end; a penalty triggers past its strict end.
        if penalty:
            op, value = ("<", high) if higher_better else (">", low)
        else:
            op, value = (">=", low) if higher_better else ("<=", high)
    else:
        value = low
        if op is None:
            op = {(True, True): "<", (True, False): ">", (False, True): ">=", (False, False): "<="}[
                (penalty, higher_better)
            ]
        elif section == "rewards" and op == ">":
            op = ">="
    return Threshold(metric, op, round(value, 10), metric_unit(metric))  # type: ignore[arg-type]


def _class_qualified(text: str, words: list[_MetricWord], number: re.Match[str], metric: str) -> str:
    """`metric` narrowed to the class the bullet measures it on: "Recall of at least 88% on drug
    names" -> recall_drug, "Precision below 80% on any entity type" -> worst_class_precision,
    "Water IoU below 50%" -> iou_water; `metric` itself when no qualifier sits next to it."""
    if metric == "accuracy":
        kind = _ON_CHART_KIND.match(text, number.end())
        return f"accuracy_{kind['name'].lower().replace(' ', '_').replace('-', '_')}" if kind else metric
    if metric not in _QUALIFIABLE and metric != "miou":
        return metric
    word = _nearest_word(text, words, *number.span(), {metric})
    if word is None:
        return metric
    left, right = _qualifier_span(text, words, word, number)
    span, before, after = text[left:right], text[left : word.start], text[word.end : right]
    if metric in _QUALIFIABLE and (
        _WORST_CLASS.search(span) or _PER_CLASS_BEFORE.search(before) or _PER_CLASS_AFTER.search(after)
    ):
        return f"worst_class_{metric}"
    name = _one_class(span)
    if name is None and metric == "miou" and _PLAIN_IOU.fullmatch(text[word.start : word.end]):
        name = _class_name(_CLASS_BEFORE_IOU.search(before))
    if name is None:
        return metric
    return f"{'iou' if metric == 'miou' else metric}_{name}"


def _qualifier_span(
    text: str, words: list[_MetricWord], word: _MetricWord, number: re.Match[str]
) -> tuple[int, int]:
    """Where a class qualifier of `word` may sit: its sentence around the metric word and the number,
    but not past another metric word or a later number, which have qualifiers of their own ("F1 >=
    0.85 overall and recall >= 0.9 on drug names", "Recall >= 0.9 overall and >= 0.8 on drug names")."""
    low, high = min(word.start, number.start()), max(word.end, number.end())
    lefts = [b.end() for b in _SENTENCE_BREAK.finditer(text, 0, low)]
    lefts += [w.end for w in words if w is not word and w.end <= low]
    rights = [b.start() for b in _SENTENCE_BREAK.finditer(text, high)]
    rights += [w.start for w in words if w is not word and w.start >= high]
    rights += [q.start() for q in _QUANTITY.finditer(text, number.end()) if _is_a_threshold_number(text, q)]
    return max([0, *lefts]), min([len(text), *rights])


def _is_a_threshold_number(text: str, match: re.Match[str]) -> bool:
    """A number that can state a threshold: not part of a name (COVID-19), not a count (12 classes)."""
    start, end = match.span()
    if _part_of_a_name(text, start, end, match):
        return False
    return bool(match["unit"] or match["unit1"] or match["cur"]) or not _COUNT_NOUN.match(text, end)


def _one_class(span: str) -> str | None:
    """The class named by "on drug names" / "for the person class" in `span`, if any."""
    for found in _ONE_CLASS.finditer(span):
        name = _class_name(found)
        if name:
            return name
    return None


def _class_name(found: re.Match[str] | None) -> str | None:
    """A matched class word as a metric-name suffix ("Drug-Name" -> drug_name), None for a word
    that is no class (_NOT_A_CLASS)."""
    if found is None or found["name"].lower() in _NOT_A_CLASS:
        return None
    return found["name"].lower().replace("-", "_")
