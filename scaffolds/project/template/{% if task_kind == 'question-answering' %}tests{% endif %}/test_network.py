"""The reader and its metrics: a start and an end logit per token, padding never an answer, spans
decoded within the passage, questions scored over all their windows; a local Hugging Face model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from config import Config
from data import TaskData, build_data
from metrics import MAX_ANSWER_TOKENS, EvalMetrics, best_spans, token_f1
from network import NOT_AN_ANSWER, Reader, build_model, count_parameters
from text_encoding import HFTextModel


def test_a_start_and_an_end_logit_per_token_and_a_loss(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    assert isinstance(model, Reader)
    ids, targets = data.train.input_ids[:4], data.train.targets[:4]
    logits, loss = model(ids, targets)
    width = int((ids != data.preprocessor.pad_id).sum(dim=1).max())  # padding columns cropped
    assert logits.shape == (4, width, 2) and torch.isfinite(loss)
    assert model(ids)[1] is None
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_padding_is_never_an_answer_and_does_not_change_the_rest(config: Config, data: TaskData) -> None:
    torch.manual_seed(0)
    model = build_model(config, data.preprocessor).eval()
    ids = data.val.input_ids[:2]
    padded = torch.cat([ids, torch.full((2, 16), data.preprocessor.pad_id)], dim=1)
    with torch.no_grad():
        logits = model(ids)[0]
        assert torch.allclose(model(padded)[0], logits, atol=1e-5)
        padding = ids[:, : logits.shape[1]] == data.preprocessor.pad_id
        assert padding.any() and (logits[padding] == NOT_AN_ANSWER).all()


def test_the_best_span_lies_in_the_passage_and_ends_after_it_starts() -> None:
    passage_start, passage_length = torch.tensor([4]), torch.tensor([7])  # positions 4 .. 10
    logits = torch.zeros(1, 12, 2)
    logits[0, 1, 0] = logits[0, 2, 1] = 50.0  # in the question: no answer comes from there
    logits[0, 9, 0], logits[0, 5, 1] = 9.0, 8.0  # the best start after the best end: no span
    score, first, last, _ = best_spans(logits, passage_start, passage_length)
    assert (first.item(), last.item(), score.item()) == (9, 9, 9.0)

    logits = torch.zeros(1, 12, 2)
    logits[0, 5, 0], logits[0, 7, 1] = 4.0, 3.0
    logits[0, 0] = torch.tensor([1.0, 1.5])
    score, first, last, no_answer = best_spans(logits, passage_start, passage_length)
    assert (first.item(), last.item(), score.item(), no_answer.item()) == (5, 7, 7.0, 2.5)

    long = torch.zeros(1, MAX_ANSWER_TOKENS + 10, 2)
    long[0, 1, 0] = long[0, -1, 1] = 5.0
    _, first, last, _ = best_spans(long, torch.tensor([1]), torch.tensor([long.shape[1] - 1]))
    assert last.item() - first.item() < MAX_ANSWER_TOKENS


@pytest.mark.parametrize(
    ("predicted", "true", "expected"),
    [((3, 5), (3, 5), 1.0), ((3, 4), (3, 5), 0.8), ((7, 9), (3, 5), 0.0), ((-1, -1), (-1, -1), 1.0),
     ((3, 5), (-1, -1), 0.0), ((-1, -1), (3, 5), 0.0)],
)  # fmt: skip
def test_f1_is_the_token_overlap_and_an_abstention_is_all_or_nothing(predicted, true, expected) -> None:
    assert token_f1(predicted, true) == pytest.approx(expected)


def window(question: int, offset: int, span: tuple[int, int], score: float, no_answer: float, gold: tuple):
    """Logits and targets of one 10-token window whose passage part starts at position 3 and
    holds the passage's tokens offset .. offset + 6, proposing `span` (window positions)."""
    logits = torch.zeros(1, 10, 2)
    logits[0, 0] = no_answer / 2
    logits[0, span[0], 0] = logits[0, span[1], 1] = score / 2
    targets = torch.tensor([[0, 0, question, offset, 3, 7, *gold]])
    return logits, targets


def test_a_question_is_scored_over_all_its_windows() -> None:
    metrics = EvalMetrics(torch.device("cpu"))
    # Question 0: the answer (passage tokens 8-9) is proposed by its second window only.
    for logits, targets in (window(0, 0, (4, 4), 2.0, 3.0, (8, 9)), window(0, 5, (6, 7), 4.0, 0.5, (8, 9))):
        metrics.update(logits, targets, torch.tensor(1.0))
    # Question 1 has no answer; its window's no-answer score beats its span: an abstention.
    metrics.update(*window(1, 0, (4, 5), 4.0, 6.0, (-1, -1)), torch.tensor(2.0))
    results = metrics.compute()
    assert results["exact_match"] == 1.0 and results["f1"] == 1.0
    assert results["no_answer_accuracy"] == 1.0 and results["abstentions"] == 0.5
    assert results["examples"] == 2 and results["windows"] == 3
    assert results["eval_loss"] == pytest.approx(4 / 3)


@pytest.fixture(scope="module")
def local_bert(tmp_path_factory: pytest.TempPathFactory, data: TaskData) -> Path:
    """A tiny BERT with the WordPiece tokenizer, saved with save_pretrained as models sit on disk."""
    from transformers import BertConfig, BertForQuestionAnswering

    folder = tmp_path_factory.mktemp("bert")
    data.preprocessor.tokenizer.save_pretrained(folder)
    bert_config = BertConfig(
        vocab_size=data.preprocessor.vocab_size, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForQuestionAnswering(bert_config).save_pretrained(folder)
    return folder


def test_a_hugging_face_reader_and_tokenizer_load_from_a_folder(config: Config, local_bert: Path) -> None:
    from transformers import BertForQuestionAnswering

    config = replace(config, model_name=str(local_bert))
    data = build_data(config)
    model = build_model(config, data.preprocessor)
    assert isinstance(model, HFTextModel)
    saved = BertForQuestionAnswering.from_pretrained(local_bert).state_dict()
    key = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(model.model.state_dict()[key], saved[key])
    ids, targets = data.train[0]
    logits, loss = model(ids[None], targets[None])
    assert logits.shape[-1] == 2 and torch.isfinite(loss)
