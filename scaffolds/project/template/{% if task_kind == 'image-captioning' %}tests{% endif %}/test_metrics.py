"""The captioning metrics against examples worked out by hand: corpus BLEU-4's clipping, brevity penalty
and lack of smoothing; CIDEr-D's rarity weights, clipping and length penalty; and the counters over
batches and over processes."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from data import END, PAD, START, CaptionPreprocessor
from metrics import EvalMetrics, cider_d, corpus_bleu, generalization_gap, items_in_batch, ngrams

# data.py's special tokens first, then the words of the test captions.
VOCABULARY = ["<pad>", "<s>", "</s>", "<unk>", "a", "dog", "runs", "cat", "sleeps", "on", "the", "sofa"]
VOCABULARY += ["puppy", "grass"]


def split(*captions: str) -> list[list[str]]:
    return [caption.split() for caption in captions]


# BLEU


def test_ngrams_counts_each_run_of_words() -> None:
    assert ngrams(["a", "b", "a", "b"], 2) == Counter({("a", "b"): 2, ("b", "a"): 1})
    assert ngrams(["a", "b"], 3) == Counter()


def test_a_caption_identical_to_one_of_its_references_scores_100() -> None:
    references = [split("the cat sat on the red mat", "there is a cat on the mat today")]
    # Every n-gram matches, and the closest reference is the identical one: no brevity penalty.
    assert corpus_bleu(split("there is a cat on the mat today"), references) == pytest.approx(100.0)


def test_bleu_sums_the_counts_over_the_corpus_before_taking_precisions() -> None:
    hypotheses = split("a cat sat on the mat", "dogs run")
    references = [
        split("the cat sat on the red mat", "there is a cat on the mat today"),
        split("two dogs run"),
    ]
    # Image 1, "a cat sat on the mat" (6 words):
    #   1-grams a, cat, sat, on, the, mat: all in a reference                          6 of 6
    #   2-grams a cat (ref 2), cat sat, sat on (ref 1), on the, the mat (ref 2)        5 of 5
    #   3-grams cat sat on, sat on the (ref 1), on the mat (ref 2); not a cat sat      3 of 4
    #   4-grams cat sat on the (ref 1); not a cat sat on, sat on the mat                1 of 3
    #   closest reference length to 6: 7 (ref 1; ref 2 has 8)
    # Image 2, "dogs run" (2 words): 1-grams 2 of 2, 2-grams 1 of 1, no 3- or 4-grams; reference length 3.
    # Corpus: precisions 8/8, 6/6, 3/4, 1/3, geometric mean (1/4) ** (1/4) = 1/sqrt(2);
    # c = 8 < r = 10, so the brevity penalty is exp(1 - 10/8) = exp(-1/4).
    # (Scored alone, image 2 would be 0: it has no 4-grams.)
    expected = 100 * math.exp(-1 / 4) / math.sqrt(2)
    assert corpus_bleu(hypotheses, references) == pytest.approx(expected)
    assert expected == pytest.approx(55.07, abs=0.01)


def test_a_repeated_word_matches_only_as_often_as_one_reference_holds_it() -> None:
    # "the" 4 times against "the cat": 1 match of 4 words; c = 4 > r = 2, so no brevity penalty.
    assert corpus_bleu(split("the the the the"), [split("the cat")], max_n=1) == pytest.approx(25.0)
    # The most in any one reference (2, in "the the dog"), not the sum over references (3): 2 of 4.
    two_references = [split("the cat", "the the dog")]
    assert corpus_bleu(split("the the the the"), two_references, max_n=1) == pytest.approx(50.0)


def test_the_brevity_penalty_lowers_a_caption_shorter_than_its_references() -> None:
    references = [split("the cat sat on the mat")]
    # Every n-gram of the 5 words is in the reference; c = 5 < r = 6: exp(1 - 6/5).
    short = corpus_bleu(split("the cat sat on the"), references)
    assert short == pytest.approx(100 * math.exp(-0.2))
    assert short < corpus_bleu(split("the cat sat on the mat"), references) == pytest.approx(100.0)


def test_a_tie_in_reference_length_goes_to_the_shorter_reference() -> None:
    # 5 words, references of 4 and 6: both 1 away; the shorter (4) makes c > r, so no penalty.
    references = [split("the cat sat on", "the cat sat on the mat")]
    assert corpus_bleu(split("the cat sat on the"), references) == pytest.approx(100.0)


def test_without_a_matching_4gram_bleu4_is_zero_as_there_is_no_smoothing() -> None:
    hypotheses, references = split("the cat sat on a mat"), [split("the cat lay on a mat")]
    # 4-grams: the cat sat on, cat sat on a, sat on a mat: none in the reference.
    assert corpus_bleu(hypotheses, references) == 0.0
    # Up to 3-grams: 5/6 (not sat), 3/5 (the cat, on a, a mat), 1/4 (on a mat); c = r = 6.
    bleu3 = corpus_bleu(hypotheses, references, max_n=3)
    assert bleu3 == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))
    assert bleu3 == pytest.approx(50.0)  # the cube root of 1/8


def test_bleu_of_nothing_is_zero() -> None:
    assert corpus_bleu([], []) == 0.0
    assert corpus_bleu([[]], [split("a cat")]) == 0.0


# CIDEr-D


def test_captions_identical_to_their_only_reference_score_10() -> None:
    captions = split("a dog runs on the grass", "a cat sleeps on the sofa", "two birds sit on a wire")
    # One reference each: the hypothesis's weights equal the reference's, so each order's cosine is
    # 1 (each caption has n-grams of every order that no other image has) and the lengths are equal.
    assert cider_d(captions, [[caption] for caption in captions]) == pytest.approx(10.0)


def test_ngrams_every_image_has_weigh_nothing() -> None:
    references = [split("a photo of a dog"), split("a photo of a cat")]
    # Every n-gram of "a photo of a" is in both images' references: idf log(2) - log(2) = 0, so the
    # caption's vectors are all zero and it scores 0. Image 1's caption is its reference: the shared
    # n-grams weigh nothing in either vector, so they do not dilute the cosine of the rest (1 per order).
    assert cider_d(split("a photo of a dog", "a photo of a"), references) == pytest.approx((10.0 + 0.0) / 2)


def test_cider_of_a_worked_example() -> None:
    hypotheses = split("a dog sits", "a cat sits")
    references = [split("a dog runs", "one puppy runs"), split("a cat sits")]
    # Two images, so idf = log 2 - log(images whose references hold the n-gram) = L = log 2 for an
    # n-gram of one image (or of none: "dog sits", "a dog sits"), 0 for "a" (both images). "runs" is in
    # two references of image 1 but counts once. Weights are counts times idf.
    # Image 1, "a dog sits" = {a: 0, dog: L, sits: L} | {a dog: L, dog sits: L} | {a dog sits: L}
    #   against "a dog runs" = {a: 0, dog: L, runs: L} | {a dog: L, dog runs: L} | {a dog runs: L}:
    #     1-grams: min(L, L) * L (dog) / (sqrt(2) L * sqrt(2) L) = 1/2; 2-grams (a dog) likewise 1/2;
    #     3-grams share nothing: 0; no 4-grams: 0. Equal lengths: no penalty. Sum 1.
    #   against "one puppy runs": nothing in common, 0.
    #   Score: 10 * (1 + 0) / 4 orders / 2 references = 1.25.
    # Image 2, its only reference: 1 for each of the orders 1 to 3, 0 for 4 (no 4-grams): 10 * 3/4 = 7.5.
    assert cider_d(hypotheses, references) == pytest.approx((1.25 + 7.5) / 2)


def test_the_length_penalty_lowers_a_longer_caption_with_the_same_weights() -> None:
    references = [split("a a a a dog"), split("a a a a cat"), split("a a a a bird")]
    others = split("a a a a cat", "a a a a bird")
    assert cider_d(split("a a a a dog", *map(" ".join, others)), references) == pytest.approx(10.0)
    # "a" runs of up to 4 words are in every image (weight 0), so extra "a"s change no weight that is
    # not 0: the cosines stay 1, and only the Gaussian penalty on the difference in length applies.
    one_longer = cider_d([["a"] * 5 + ["dog"], *others], references)
    assert one_longer == pytest.approx((10 * math.exp(-(1**2) / (2 * 6**2)) + 20) / 3)
    six_longer = cider_d([["a"] * 10 + ["dog"], *others], references)
    assert six_longer == pytest.approx((10 * math.exp(-(6**2) / (2 * 6**2)) + 20) / 3)
    assert six_longer < one_longer < 10.0


def test_repeating_a_word_does_not_raise_cider() -> None:
    references = [split("a dog runs"), split("a cat sleeps")]
    # Image 2's caption is its reference: 10 * 3/4 = 7.5 (no 4-grams). L = log 2; "a" weighs 0.
    # "dog" = {dog: L} against {a: 0, dog: L, runs: L}: cosine L*L / (L * sqrt(2) L) = 1/sqrt(2) for
    # 1-grams, no higher orders; 1 word against 3: penalty exp(-4/72).
    once = cider_d(split("dog", "a cat sleeps"), references)
    assert once == pytest.approx((10 * math.exp(-4 / 72) / math.sqrt(2) / 4 + 7.5) / 2)
    # "dog dog dog" = {dog: 3L}: clipped to min(3L, L) * L over norms 3L * sqrt(2) L = 1/(3 sqrt(2));
    # its 2- and 3-grams are in no reference. Equal lengths, no penalty. Without the clipping the
    # 1-gram cosine would stay 1/sqrt(2) and, the penalty gone, the repetition would score higher.
    repeated = cider_d(split("dog dog dog", "a cat sleeps"), references)
    assert repeated == pytest.approx((10 / (3 * math.sqrt(2)) / 4 + 7.5) / 2)
    assert repeated < once


def test_cider_of_nothing_is_zero() -> None:
    assert cider_d([], []) == 0.0


# The counters


def preprocessor() -> CaptionPreprocessor:
    """The project's own, for its words(): no start or padding, stop at the end."""
    return CaptionPreprocessor(16, VOCABULARY, max_words=20)


def ids(words: list[str], length: int, start: bool = True, end: bool = True) -> list[int]:
    values = [START] * start + [VOCABULARY.index(word) for word in words] + [END] * end
    return values + [PAD] * (length - len(values))


def references_tensor(images: list[list[list[str]]]) -> torch.Tensor:
    """[images, 3 references, 8] ids; an image with fewer references gets rows of padding."""
    rows = [[ids(words, 8) for words in captions] + [[PAD] * 8] * (3 - len(captions)) for captions in images]
    return torch.tensor(rows)


HYPOTHESES = split("a dog runs", "a cat sleeps on the sofa", "a dog runs")
REFERENCES = [
    split("a dog runs", "a puppy runs on the grass"),
    split("a cat sleeps on the sofa", "the cat sleeps", "a cat sleeps"),
    split("a dog runs on the grass"),
]


def batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(outputs, targets, loss) of two batches, 2 images and 1. The second caption fills all 6
    places without an end token."""
    first = torch.tensor([ids(HYPOTHESES[0], 6, start=False), ids(HYPOTHESES[1], 6, start=False, end=False)])
    second = torch.tensor([ids(HYPOTHESES[2], 6, start=False)])
    return [
        (first, references_tensor(REFERENCES[:2]), torch.tensor(2.0)),
        (second, references_tensor(REFERENCES[2:]), torch.tensor(5.0)),
    ]


def expected_results() -> dict[str, float]:
    return {
        "eval_loss": (2.0 * 2 + 5.0 * 1) / 3,  # weighted by images, not the mean of the batches' 3.5
        "bleu": corpus_bleu(HYPOTHESES, REFERENCES),
        "cider": cider_d(HYPOTHESES, REFERENCES),
        "examples": 3,
        "mean_words": (3 + 6 + 3) / 3,
        "max_words": 6,
        "distinct_captions": 2,
    }


def test_the_counters_score_the_words_of_every_batch() -> None:
    counters = EvalMetrics(preprocessor(), torch.device("cpu"))
    for outputs, targets, loss in batches():
        counters.update(outputs, targets, loss)
    assert counters.hypotheses == HYPOTHESES and counters.references == REFERENCES
    results = counters.compute()
    assert results == pytest.approx(expected_results())
    assert results["bleu"] > 0 and results["cider"] > 0  # the comparison above is not of two zeros


def evaluate_shard(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """One process of a torchrun-like group: its own batch, then all_reduce and compute."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        counters = EvalMetrics(preprocessor(), torch.device("cpu"))
        counters.update(*batches()[rank])
        counters.all_reduce()
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(counters.compute()))
    finally:
        dist.destroy_process_group()


def test_processes_scoring_their_shards_agree_with_one_scoring_the_whole_split(tmp_path: Path) -> None:
    # CIDEr-D's idf counts images over the whole split, so per-process scores would differ from these.
    mp.spawn(evaluate_shard, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in range(2):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == pytest.approx(expected_results())


def test_the_gap_is_how_much_better_training_images_are_captioned() -> None:
    assert generalization_gap({"cider": 1.25}, {"cider": 0.75}) == pytest.approx(0.5)
    assert items_in_batch(references_tensor(REFERENCES)) == 3
