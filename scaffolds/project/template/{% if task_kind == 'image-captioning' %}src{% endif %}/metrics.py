"""Evaluation metrics for captioning: BLEU-4 and CIDEr-D of the generated captions against the several
reference captions each image has.

bleu   BLEU-4 at corpus level (Papineni et al. 2002; computed as the COCO caption evaluation and
       sacrebleu compute it). Each caption's n-grams (n = 1..4) count as matches up to the most times
       any one of its references holds them; matches and n-grams are summed over the whole split
       before the four precisions are taken, so a short caption without 4-grams does not zero the
       score. Their geometric mean is scaled by a brevity penalty, exp(1 - r/c) when the captions'
       total length c is below r, the total length of each caption's closest-length reference.
       Reported out of 100; no smoothing, so a split without a single matching 4-gram scores 0.
cider  CIDEr-D (Vedantam et al. 2015; computed as pycocoevalcap's cider_scorer.py does). Each
       n-gram (n = 1..4) is weighted by its count times how rare it is: the log of the number of
       images over the number of images whose references hold it, so words every caption uses
       ("a", "the") weigh nothing and a split's own distinctive words weigh most. For each n, the
       caption's weights are clipped at a reference's (repeating a word gains nothing), compared
       with that reference by cosine similarity, and multiplied by a Gaussian penalty on their
       difference in length (sigma 6 words); these are averaged over n and over the references,
       times 10, then over the images. A caption identical to its only reference scores 10 (less if
       it is under 4 words: an n with no n-grams scores 0); strong models on COCO score about 1.1 to
       1.4 (papers often print this times 100).

Both metrics depend on the whole split (corpus-level counts; rarity counted over all images), so they
are not means of per-process values: under torchrun each process decodes its shard, and the words of
every caption and reference are gathered before scoring. Names match the task spec's metric names, so
`runner.py check` compares them directly.
"""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING, Protocol

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from data import TaskData

MONITOR = "cider"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second (images)
MAX_N = 4  # BLEU-4 and CIDEr-D both use n-grams of 1 to 4 words
CIDER_SIGMA = 6.0  # the width, in words, of CIDEr-D's length penalty


class CaptionWords(Protocol):
    """What the metrics need of the preprocessor: word ids back to words."""

    def words(self, ids: list[int]) -> list[str]:
        """The words of generated or reference ids: start, end and padding dropped, stopping at the end."""
        ...


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def ngrams(words: list[str], n: int) -> collections.Counter[tuple[str, ...]]:
    """How many times each run of `n` consecutive words occurs in `words`."""
    return collections.Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def closest_length(length: int, references: list[list[str]]) -> int:
    """The length of the reference closest in length to a caption of `length` words; a tie goes to
    the shorter, as in sacrebleu and the COCO evaluation. 0 for an image without references."""
    distances = [(abs(len(reference) - length), len(reference)) for reference in references]
    return min(distances, default=(0, 0))[1]


def corpus_bleu(hypotheses: list[list[str]], references: list[list[list[str]]], max_n: int = MAX_N) -> float:
    """Corpus-level BLEU (BLEU-4 by default) of each hypothesis's words against its image's
    references' words, out of 100."""
    matches = [0] * max_n  # per n: hypothesis n-grams matched, clipped by the references
    totals = [0] * max_n  # per n: hypothesis n-grams
    hypothesis_length = reference_length = 0
    for hypothesis, image_references in zip(hypotheses, references, strict=True):
        hypothesis_length += len(hypothesis)
        reference_length += closest_length(len(hypothesis), image_references)
        for n in range(1, max_n + 1):
            counts = ngrams(hypothesis, n)
            most_in_one_reference: collections.Counter[tuple[str, ...]] = collections.Counter()
            for reference in image_references:
                most_in_one_reference |= ngrams(reference, n)  # | keeps the larger count
            matches[n - 1] += sum((counts & most_in_one_reference).values())  # & keeps the smaller
            totals[n - 1] += sum(counts.values())
    # Unsmoothed, as BLEU-4 is reported for captioning: one order without a match zeroes the mean.
    if hypothesis_length == 0 or 0 in matches:
        return 0.0
    log_precision = sum(math.log(matched / total) for matched, total in zip(matches, totals, strict=True))
    if hypothesis_length > reference_length:
        brevity_penalty = 1.0
    else:
        brevity_penalty = math.exp(1 - reference_length / hypothesis_length)
    return 100.0 * brevity_penalty * math.exp(log_precision / max_n)


def all_ngrams(words: list[str]) -> collections.Counter[tuple[str, ...]]:
    """Counts of every n-gram of 1 to MAX_N words."""
    counts: collections.Counter[tuple[str, ...]] = collections.Counter()
    for n in range(1, MAX_N + 1):
        counts.update(ngrams(words, n))
    return counts


def cider_d(
    hypotheses: list[list[str]], references: list[list[list[str]]], sigma: float = CIDER_SIGMA
) -> float:
    """CIDEr-D of each hypothesis's words against its image's references' words, averaged over images
    (0 to 10)."""
    if not hypotheses:
        return 0.0
    hypothesis_counts = [all_ngrams(hypothesis) for hypothesis in hypotheses]
    reference_counts = [[all_ngrams(reference) for reference in image] for image in references]
    # Rarity is counted in images, not references: an n-gram in three references of one image counts once.
    images_with = collections.Counter(ngram for image in reference_counts for ngram in set().union(*image))
    # pycocoevalcap's idf: log(images) - log(max(1, images with the n-gram)). An n-gram no reference
    # holds (only a hypothesis can) weighs as much as one only a single image's references hold.
    log_images = math.log(len(references))

    def weights(counts: collections.Counter[tuple[str, ...]]) -> tuple[list[dict], list[float]]:
        """tf-idf weights (raw counts times idf) per n, and their norms over the full, unclipped vectors."""
        by_order: list[dict[tuple[str, ...], float]] = [{} for _ in range(MAX_N)]
        for ngram, count in counts.items():
            by_order[len(ngram) - 1][ngram] = count * (log_images - math.log(max(1, images_with[ngram])))
        return by_order, [math.sqrt(sum(w * w for w in order.values())) for order in by_order]

    scores = []
    for hypothesis, counts, image_words, image_counts in zip(
        hypotheses, hypothesis_counts, references, reference_counts, strict=True
    ):
        hypothesis_weights, hypothesis_norms = weights(counts)
        total = 0.0
        for reference, reference_ngrams in zip(image_words, image_counts, strict=True):
            reference_weights, reference_norms = weights(reference_ngrams)
            # pycocoevalcap measures length in bigrams; that differs from words only for an empty
            # caption, whose weights are all zero, so words give the same scores.
            length_penalty = math.exp(-((len(hypothesis) - len(reference)) ** 2) / (2 * sigma**2))
            for n in range(MAX_N):
                # An all-zero vector (no n-grams of this order, or only ones every image has) is
                # similar to nothing; pycocoevalcap's numerator is 0 there too.
                if hypothesis_norms[n] == 0 or reference_norms[n] == 0:
                    continue
                # The "D" clipping: the hypothesis's weight counts at most up to the reference's.
                overlap = sum(
                    min(weight, reference_weights[n].get(ngram, 0.0)) * reference_weights[n].get(ngram, 0.0)
                    for ngram, weight in hypothesis_weights[n].items()
                )
                total += overlap / (hypothesis_norms[n] * reference_norms[n]) * length_penalty
        # Mean over the orders and over the references; an image without references (pycocoevalcap
        # would divide by zero) scores 0.
        scores.append(10.0 * total / MAX_N / len(image_words) if image_words else 0.0)
    return sum(scores) / len(scores)


class EvalMetrics:
    def __init__(self, preprocessor: CaptionWords, device: torch.device):
        self.preprocessor = preprocessor
        self.hypotheses: list[list[str]] = []  # per image: the words the model wrote
        self.references: list[list[list[str]]] = []  # per image: the words of each of its references
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.images = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        """outputs: [batch, length] generated word ids (no start token; end, then padding, or no end
        at all); targets: [batch, references, length] reference ids (start, words, end, padding), a
        row of padding where an image has fewer references; loss: the batch's mean loss."""
        # One copy to the host per batch rather than one per caption.
        for generated, image_references in zip(outputs.cpu().tolist(), targets.cpu().tolist(), strict=True):
            self.hypotheses.append(self.preprocessor.words(generated))
            self.references.append([self.preprocessor.words(row) for row in image_references if any(row)])
        self.loss_sum += loss.double() * targets.shape[0]
        self.images += targets.shape[0]

    def all_reduce(self) -> None:
        """Every process's captions together (each decoded its own shard): both metrics need the
        whole split, not per-process scores."""
        for tensor in (self.loss_sum, self.images):
            dist.all_reduce(tensor)
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (self.hypotheses, self.references))
        self.hypotheses = [hypothesis for hypotheses, _ in gathered for hypothesis in hypotheses]
        self.references = [image for _, references in gathered for image in references]

    def compute(self) -> dict[str, float]:
        images = int(self.images.item())
        lengths = [len(hypothesis) for hypothesis in self.hypotheses]
        return {
            "eval_loss": (self.loss_sum / max(images, 1)).item(),
            "bleu": corpus_bleu(self.hypotheses, self.references),
            "cider": cider_d(self.hypotheses, self.references),
            "examples": images,
            # How the model writes, to catch a collapse into one short caption for every image.
            "mean_words": sum(lengths) / len(lengths) if lengths else 0.0,
            "max_words": max(lengths, default=0),
            "distinct_captions": len({tuple(hypothesis) for hypothesis in self.hypotheses}),
        }


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model captions images it trained on (CIDEr-D)."""
    return train["cider"] - val["cider"]
