"""The captioner: shapes, the loss, beam search, and what it refuses."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from config import Config, ProjectError
from data import END, PAD, START, CaptionPreprocessor, TaskData
from network import Captioner, build_model, caption_loss, pick_reference

VOCABULARY = ["<pad>", "<s>", "</s>", "<unk>", "a", "red", "blue", "mug", "lamp"]


def tiny_captioner(max_words: int = 6, beam_size: int = 3) -> Captioner:
    torch.manual_seed(0)
    return Captioner(
        len(VOCABULARY), 48, max_words, width=8, n_embd=32, n_layer=1, n_head=4, beam_size=beam_size
    )


def references(*captions: list[int], length: int = 8) -> torch.Tensor:
    """[1, references, length] ids of captions given as word ids (without <s> and </s>)."""
    rows = torch.full((len(captions), length), PAD)
    for row, words in enumerate(captions):
        ids = [START, *words, END]
        rows[row, : len(ids)] = torch.tensor(ids)
    return rows[None]


def test_training_gives_next_word_logits_and_evaluation_gives_captions() -> None:
    model = tiny_captioner()
    pixels, refs = torch.randn(2, 3, 48, 48), references([4, 5, 7], [4, 6, 8]).repeat(2, 1, 1)
    logits, loss = model.train()(pixels, refs)
    assert logits.shape == (2, 7, len(VOCABULARY)) and loss.ndim == 0 and math.isfinite(loss.item())
    captions, eval_loss = model.eval()(pixels, refs)
    assert captions.shape[0] == 2 and captions.shape[1] <= model.max_words + 1 and eval_loss.ndim == 0
    assert model(pixels)[1] is None  # no references, no loss


def test_the_loss_ignores_padding() -> None:
    logits = torch.randn(1, 4, len(VOCABULARY))
    targets = torch.tensor([[4, 7, END, PAD]])
    expected = torch.nn.functional.cross_entropy(logits[0, :3], targets[0, :3])
    assert caption_loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_training_picks_each_photos_references_and_never_an_absent_one() -> None:
    refs = references([4, 5, 7], [4, 6, 8]).repeat(200, 1, 1)
    refs[:100, 1] = PAD  # the first 100 photos have one reference
    picked = pick_reference(refs)
    assert (picked[:100] == refs[:100, 0]).all()
    second = (picked[100:] == refs[100:, 1]).all(dim=1).float().mean().item()
    assert 0.3 < second < 0.7  # either reference of the others, about equally often


def test_the_model_learns_to_caption_two_photos_apart() -> None:
    model = tiny_captioner()
    pixels = torch.stack([torch.full((3, 48, 48), -1.0), torch.full((3, 48, 48), 1.0)])
    refs = torch.cat([references([4, 5, 7]), references([4, 6, 8])])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        _, loss = model(pixels, refs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.1
    captions, _ = model.eval()(pixels)
    words = [[VOCABULARY[i] for i in row.tolist() if i not in (PAD, END)] for row in captions]
    assert words == [["a", "red", "mug"], ["a", "blue", "lamp"]]


def test_beam_search_keeps_the_best_captions_best_first_within_max_words() -> None:
    model = tiny_captioner(max_words=5, beam_size=4).eval()
    memory = model.encode(torch.randn(3, 3, 48, 48))
    captions, scores = model.beam_search(memory)
    assert captions.shape[:2] == (3, 4) and captions.shape[2] <= 6
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
    for photo in range(3):
        for beam in range(4):
            ids = captions[photo, beam].tolist()
            assert END in ids and ids.index(END) <= 5  # ended, after at most max_words words
            assert START not in ids and all(i == PAD for i in ids[ids.index(END) + 1 :])
            # Its score is the sum of the model's log-probabilities of its words and </s>.
            prefix = torch.tensor([[START, *ids[: ids.index(END)]]])
            log_probs = model.decode(prefix, memory[photo : photo + 1]).float().log_softmax(-1)[0]
            path = torch.tensor(ids[: ids.index(END) + 1])
            expected = log_probs[torch.arange(len(path)), path]  # a forced </s> at its own too
            assert scores[photo, beam].item() == pytest.approx(expected.sum().item(), abs=1e-4)


def test_beam_search_of_width_one_is_greedy_decoding() -> None:
    model = tiny_captioner(max_words=6, beam_size=1).eval()
    memory = model.encode(torch.randn(1, 3, 48, 48))
    captions, _ = model.beam_search(memory)
    sequence = [START]
    while len(sequence) <= model.max_words and sequence[-1] != END:
        logits = model.decode(torch.tensor([sequence]), memory)[0, -1]
        logits[[PAD, START]] = float("-inf")
        sequence.append(int(logits.argmax()))
    expected = sequence[1:] if sequence[-1] == END else [*sequence[1:], END]  # out of words: it ends
    assert captions[0, 0].tolist()[: len(expected)] == expected


def test_a_pretrained_model_name_is_refused_in_one_line(config: Config, data: TaskData) -> None:
    with pytest.raises(ProjectError, match="model_name is not supported"):
        build_model(replace(config, model_name="Salesforce/blip-image-captioning-base"), data.preprocessor)


def test_the_built_model_follows_the_settings(config: Config) -> None:
    preprocessor = CaptionPreprocessor(config.image_size, VOCABULARY, max_words=config.max_words)
    model = build_model(config, preprocessor)
    assert model.max_words == config.max_words and model.beam_size == config.beam_size
    assert model.head.weight is model.words.weight  # tied
