"""The masked autoencoder: patches in and out, what the encoder sees, the loss over hidden patches
only, and the features the linear probe reads."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from config import Config, ProjectError
from data import UNLABELLED, ImagePreprocessor, TaskData
from network import MaskedAutoencoder, build_model, count_parameters, encoder_parameters, sincos_positions


def small_model(**changes: object) -> MaskedAutoencoder:
    settings = dict(
        image_size=16, patch_size=4, channels=3, n_embd=32, n_layer=1, n_head=4,
        decoder_embd=16, decoder_layer=1, decoder_head=2, mask_ratio=0.75, norm_pix_loss=False,
    )  # fmt: skip
    return MaskedAutoencoder(**(settings | changes))


def test_patchify_and_unpatchify_are_inverses_in_row_major_order() -> None:
    model = small_model()
    images = torch.randn(2, 3, 16, 16)
    patches = model.patchify(images)
    assert patches.shape == (2, 16, 4 * 4 * 3)
    assert torch.equal(model.unpatchify(patches), images)
    # Patch 1 is the second square of the top row: rows 0-3, columns 4-7, channels last.
    assert torch.equal(patches[0, 1], images[0, :, 0:4, 4:8].permute(1, 2, 0).reshape(-1))


def test_position_encodings_differ_for_every_patch_and_are_fixed() -> None:
    encoding = sincos_positions(4, 32)
    assert encoding.shape == (16, 32)
    assert len({tuple(row.tolist()) for row in encoding}) == 16
    assert "positions" not in small_model().state_dict()  # rebuilt, not saved: nothing to learn


def test_the_encoder_sees_only_the_visible_quarter_of_the_patches() -> None:
    model = small_model().eval()
    seen: list[torch.Size] = []
    model.encoder[0].register_forward_hook(lambda module, args, output: seen.append(args[0].shape))
    images = torch.randn(3, 3, 16, 16)
    model.reconstruct(images)
    assert seen[0] == (3, 4, 32)  # 16 patches, 75% hidden: 4 seen
    seen.clear()
    model.features(images)
    assert seen[0] == (3, 16, 32)  # the probe's features read the whole image


def test_the_loss_counts_hidden_patches_only() -> None:
    """The mean squared error over the 12 hidden patches of each image, not over all 16."""
    torch.manual_seed(0)
    model = small_model().eval()
    images = torch.randn(2, 3, 16, 16)
    generator = torch.Generator().manual_seed(1)
    predicted, hidden, loss = model.reconstruct(images, generator=generator)
    assert hidden.sum(dim=1).tolist() == [12, 12]
    targets = model.patchify(images)
    error = (predicted - targets).pow(2).mean(dim=-1)
    assert torch.allclose(loss, error[hidden].mean())
    assert not torch.allclose(loss, error.mean())


def test_evaluation_hides_the_same_patches_every_time_and_training_does_not() -> None:
    model = small_model()
    images = torch.randn(4, 3, 16, 16)
    model.eval()
    first, second = model(images)[1], model(images)[1]
    assert torch.equal(first, second)
    model.train()
    with torch.no_grad():
        losses = {float(model(images)[1]) for _ in range(5)}
    assert len(losses) > 1


def test_evaluation_gives_the_whole_images_features_and_training_never_reads_labels() -> None:
    model = small_model()
    images = torch.randn(4, 3, 16, 16)
    model.eval()
    features, loss = model(images, torch.tensor([0, 1, 2, UNLABELLED]))
    assert features.shape == (4, 32) and torch.allclose(features, model.features(images))
    assert torch.isfinite(loss)
    model.train()
    torch.manual_seed(3)
    outputs, labelled = model(images, torch.tensor([0, 1, 2, 3]))
    torch.manual_seed(3)  # the same patches hidden
    _, unlabelled = model(images, torch.full((4,), UNLABELLED))
    assert outputs is None and torch.equal(labelled, unlabelled)


def test_norm_pix_loss_targets_each_patch_normalised() -> None:
    model = small_model(norm_pix_loss=True)
    targets = model.targets(torch.randn(2, 3, 16, 16) * 5 + 3)
    assert torch.allclose(targets.mean(dim=-1), torch.zeros(2, 16), atol=1e-5)
    assert torch.allclose(targets.std(dim=-1), torch.ones(2, 16), atol=1e-3)


def test_the_built_model_fits_the_data_and_counts_its_encoder(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor).eval()
    size = data.preprocessor.image_size
    features, loss = model(torch.randn(2, 3, size, size), torch.tensor([0, UNLABELLED]))
    assert features.shape == (2, config.n_embd) and torch.isfinite(loss)
    assert 0 < encoder_parameters(model) < count_parameters(model)


@pytest.mark.parametrize(("size", "patch"), [(32, 4), (32, 8), (48, 16)])
def test_any_patch_size_that_divides_the_image_works(config: Config, size: int, patch: int) -> None:
    preprocessor = ImagePreprocessor(image_size=size, channels=3, labels=["a", "b"])
    model = build_model(replace(config, patch_size=patch), preprocessor)
    assert model.patches == (size // patch) ** 2
    _, loss = model(torch.randn(2, 3, size, size), torch.tensor([0, 1]))
    loss.backward()


def test_a_hugging_face_model_name_is_refused_in_one_line(config: Config, data: TaskData) -> None:
    with pytest.raises(ProjectError, match="pre-training builds its own encoder"):
        build_model(replace(config, model_name="facebook/vit-mae-base"), data.preprocessor)
