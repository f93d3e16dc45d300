"""The image classifiers: the small ConvNet and a Hugging Face model loaded from a local folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from config import Config
from data import ImagePreprocessor, TaskData, build_data
from network import ConvNet, HFImageClassifier, build_model, count_parameters


def test_convnet_gives_one_logit_per_class_and_a_loss(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    pixels = torch.randn(4, 1, 8, 8)
    logits, loss = model(pixels, torch.tensor([0, 1, 2, 3]))
    assert logits.shape == (4, 10)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert model(pixels)[1] is None


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (3, 32), (3, 224)])
def test_convnet_downsamples_any_image_size_to_a_small_map(channels: int, size: int) -> None:
    model = ConvNet(channels, num_classes=5, image_size=size, width=8)
    logits, _ = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 5)


def test_parameter_count_counts_every_weight(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    model.head[1].weight.requires_grad_(False)
    assert (
        count_parameters(model, trainable_only=True) == count_parameters(model) - model.head[1].weight.numel()
    )


@pytest.fixture(scope="module")
def local_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ViT saved with save_pretrained, as a downloaded or fine-tuned model sits on disk."""
    from transformers import ViTConfig, ViTForImageClassification

    vit_config = ViTConfig(
        image_size=8, patch_size=2, num_channels=1, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, num_labels=3,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    ViTForImageClassification(vit_config).save_pretrained(folder)
    return folder


def test_a_hugging_face_model_loads_its_pretrained_weights_from_a_folder(
    config: Config, local_vit: Path
) -> None:
    from transformers import ViTForImageClassification

    config = replace(config, model_name=str(local_vit))
    preprocessor = ImagePreprocessor(image_size=8, channels=1, labels=[str(d) for d in range(10)])
    model = build_model(config, preprocessor)
    assert isinstance(model, HFImageClassifier)
    saved = ViTForImageClassification.from_pretrained(local_vit)
    embeddings = "vit.embeddings.patch_embeddings.projection.weight"
    assert torch.equal(model.model.state_dict()[embeddings], saved.state_dict()[embeddings])
    logits, loss = model(torch.randn(2, 1, 8, 8), torch.tensor([0, 9]))
    assert logits.shape == (2, 10)  # the head was resized from 3 to 10 labels
    loss.backward()

    fresh = build_model(replace(config, pretrained=False), preprocessor)
    assert not torch.equal(fresh.model.state_dict()[embeddings], saved.state_dict()[embeddings])


def test_the_preprocessing_follows_the_pretrained_models_input(
    config: Config, local_vit: Path, tmp_path: Path
) -> None:
    data = build_data(replace(config, model_name=str(local_vit)))
    assert (data.preprocessor.image_size, data.preprocessor.channels) == (8, 1)
