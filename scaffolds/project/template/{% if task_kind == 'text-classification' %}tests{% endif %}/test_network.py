"""The text classifier: bag of embeddings or transformer layers, padding ignored; a local HF model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from config import Config
from data import TaskData, TextPreprocessor, build_data
from network import TextClassifier, build_model, count_parameters
from programs import Probabilities, save_program
from text_encoding import HFTextModel


@pytest.mark.parametrize("n_layer", [0, 2])
def test_one_logit_per_class_and_a_loss(config: Config, data: TaskData, n_layer: int) -> None:
    model = build_model(replace(config, n_layer=n_layer), data.preprocessor)
    ids = data.preprocessor.encode(["Return the event loop.", "Parse a message."])
    logits, loss = model(ids, torch.tensor([0, 1]))
    assert logits.shape == (2, len(data.preprocessor.labels)) and torch.isfinite(loss)
    assert model(ids)[1] is None


@pytest.mark.parametrize("n_layer", [0, 2])
def test_padding_does_not_change_the_prediction(config: Config, data: TaskData, n_layer: int) -> None:
    torch.manual_seed(0)
    model = build_model(replace(config, n_layer=n_layer), data.preprocessor).eval()
    ids = data.preprocessor.encode(["Return the event loop.", "Parse a message from a string of bytes."])
    padded = torch.cat([ids, torch.zeros(2, 30, dtype=ids.dtype)], dim=1)
    empty = torch.zeros(1, config.max_length, dtype=ids.dtype)  # all padding
    with torch.no_grad():
        alone = model(ids[:1])[0]
        assert torch.allclose(model(ids)[0][:1], alone, atol=1e-5)  # shorter than its batch-mate
        assert torch.allclose(model(padded)[0], model(ids)[0], atol=1e-5)
        assert torch.isfinite(model(empty)[0]).all()


def test_parameter_count_counts_every_weight(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    assert isinstance(model, TextClassifier)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def local_bert(tmp_path_factory: pytest.TempPathFactory, data: TaskData) -> Path:
    """A tiny BERT with the WordPiece tokenizer, saved with save_pretrained as models sit on disk."""
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("bert")
    data.preprocessor.tokenizer.save_pretrained(folder)
    bert_config = BertConfig(
        vocab_size=data.preprocessor.vocab_size, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(bert_config).save_pretrained(folder)
    return folder


def test_a_hugging_face_model_and_tokenizer_load_from_a_folder(
    config: Config, local_bert: Path, tmp_path: Path
) -> None:
    from transformers import BertForSequenceClassification

    config = replace(config, model_name=str(local_bert))
    data = build_data(config)
    model = build_model(config, data.preprocessor)
    assert isinstance(model, HFTextModel)
    saved = BertForSequenceClassification.from_pretrained(local_bert).state_dict()
    key = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(model.model.state_dict()[key], saved[key])
    ids, label = data.train[0]
    logits, loss = model(ids[None], torch.tensor([label]))
    assert logits.shape == (1, 5) and torch.isfinite(loss)  # the head was resized to 5 packages

    # Its layers are numbered for layer-wise learning rates: embeddings, the one layer, the head.
    depths = model.layer_depths()
    assert depths["model.bert.embeddings.word_embeddings.weight"] == 0
    assert depths["model.bert.embeddings.LayerNorm.weight"] == 0
    assert depths["model.bert.encoder.layer.0.attention.self.query.weight"] == 1
    assert depths["model.classifier.weight"] == depths["model.bert.pooler.dense.weight"] == 2
    features = model.features(ids[None])
    assert features.shape == (1, 32)  # the hidden width, below the head

    # `runner.py export` takes it too: the program gives its probabilities for any batch.
    classifier = Probabilities(model.eval(), dim=-1)
    texts = [data.val.texts[i] for i in range(3)]
    save_program(classifier, data.preprocessor.encode(texts[:2]), tmp_path / "c.pt2")
    program = torch.export.load(tmp_path / "c.pt2").module()
    with torch.no_grad():
        for batch in (texts[:1], texts):
            ids = data.preprocessor.encode(batch)
            assert torch.allclose(program(ids), classifier(ids), atol=1e-6)


def test_the_preprocessor_knows_its_pad_id_and_vocabulary(data: TaskData) -> None:
    assert isinstance(data.preprocessor, TextPreprocessor)
    assert data.preprocessor.tokenizer.convert_ids_to_tokens(data.preprocessor.pad_id) == "[PAD]"
