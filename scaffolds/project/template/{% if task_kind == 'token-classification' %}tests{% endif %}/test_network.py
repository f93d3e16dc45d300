"""The tagger and its metrics: one row of tag logits per token, padding ignored, entity-level
scores read from BIO tags; a local Hugging Face token classifier."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from config import Config
from data import IGNORE, TaskData, build_data
from metrics import EvalMetrics, spans
from network import Tagger, build_model, count_parameters
from text_encoding import HFTextModel

NOTES = [["Started", "lisinopril", "10", "mg", "daily", "."], ["Denies", "gout", "."]]


def test_one_row_of_tag_logits_per_token_and_a_loss(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    assert isinstance(model, Tagger)
    ids, firsts = data.preprocessor.encode(NOTES)
    tags = torch.where(firsts == IGNORE, IGNORE, 0)  # every word O
    logits, loss = model(ids, tags)
    width = int((ids != data.preprocessor.pad_id).sum(dim=1).max())  # padding columns cropped
    assert logits.shape == (2, width, len(data.preprocessor.labels)) and torch.isfinite(loss)
    assert model(ids)[1] is None
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_padding_and_batch_mates_do_not_change_a_notes_tags(config: Config, data: TaskData) -> None:
    torch.manual_seed(0)
    model = build_model(config, data.preprocessor).eval()
    ids, _ = data.preprocessor.encode(NOTES)
    padded = torch.cat([ids, torch.zeros(2, 16, dtype=ids.dtype)], dim=1)
    with torch.no_grad():
        alone = model(ids[1:])[0]
        together = model(ids)[0][1:, : alone.shape[1]]
        assert torch.allclose(together, alone, atol=1e-5)
        assert torch.allclose(model(padded)[0], model(ids)[0], atol=1e-5)


def test_only_tagged_tokens_count_in_the_loss(config: Config, data: TaskData) -> None:
    torch.manual_seed(0)
    model = build_model(replace(config, dropout=0.0), data.preprocessor).eval()
    ids, firsts = data.preprocessor.encode(NOTES[:1])
    tags = torch.where(firsts == IGNORE, IGNORE, 1)
    logits, loss = model(ids, tags)
    scored = tags[:, : logits.shape[1]] != IGNORE
    expected = torch.nn.functional.cross_entropy(logits[scored], tags[:, : logits.shape[1]][scored])
    assert torch.allclose(loss, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["B-DRUG", "B-DOSE", "I-DOSE", "O"], {("DRUG", 0, 0), ("DOSE", 1, 2)}),
        (["O", "I-DRUG", "I-DRUG"], {("DRUG", 1, 2)}),  # an I- after O opens an entity (seqeval)
        (["B-DRUG", "I-DOSE"], {("DRUG", 0, 0), ("DOSE", 1, 1)}),  # another type's I- does too
        (["B-DRUG", "B-DRUG"], {("DRUG", 0, 0), ("DRUG", 1, 1)}),
        (["O", "O"], set()),
    ],
)
def test_entities_are_read_from_bio_tags(tags: list[str], expected: set) -> None:
    assert spans(tags) == expected


def test_entity_scores_count_exact_spans_only() -> None:
    labels = ["O", "B-DRUG", "I-DRUG", "B-DOSE", "I-DOSE"]
    metrics = EvalMetrics(labels, torch.device("cpu"))
    truth = torch.tensor([[1, 3, 4, 0, IGNORE]])  # DRUG, DOSE(2 words)
    guess = torch.tensor([[1, 3, 0, 0, 0]])  # DRUG right, DOSE cut short: wrong
    logits = torch.nn.functional.one_hot(guess, len(labels)).float()
    metrics.update(logits, truth, torch.tensor(0.5))
    results = metrics.compute()
    assert results["precision"] == results["recall"] == 0.5 and results["f1"] == 0.5
    assert results["f1_drug"] == 1.0 and results["f1_dose"] == 0.0
    assert results["worst_class_precision"] == 0.0 and results["accuracy"] == 0.75
    assert results["predicted_classes"] == 3 and results["entities"] == 2 and results["examples"] == 1


@pytest.fixture(scope="module")
def local_bert(tmp_path_factory: pytest.TempPathFactory, data: TaskData) -> Path:
    """A tiny BERT with the WordPiece tokenizer, saved with save_pretrained as models sit on disk."""
    from transformers import BertConfig, BertForTokenClassification

    folder = tmp_path_factory.mktemp("bert")
    data.preprocessor.tokenizer.save_pretrained(folder)
    bert_config = BertConfig(
        vocab_size=data.preprocessor.vocab_size, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForTokenClassification(bert_config).save_pretrained(folder)
    return folder


def test_a_hugging_face_tagger_and_tokenizer_load_from_a_folder(config: Config, local_bert: Path) -> None:
    from transformers import BertForTokenClassification

    config = replace(config, model_name=str(local_bert))
    data = build_data(config)
    model = build_model(config, data.preprocessor)
    assert isinstance(model, HFTextModel)
    saved = BertForTokenClassification.from_pretrained(local_bert).state_dict()
    key = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(model.model.state_dict()[key], saved[key])
    ids, tags = data.train[0]
    logits, loss = model(ids[None], tags[None])
    assert logits.shape[-1] == len(data.preprocessor.labels) and torch.isfinite(loss)  # head resized
