"""The segmenter and its metrics: shapes, the loss over labelled pixels, IoU from known counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from config import Config, ProjectError
from data import IGNORE, SegmentationPreprocessor
from metrics import EvalMetrics, metric_name
from network import UNet, build_model
from programs import Probabilities, save_program

LABELS = ["other", "building", "road"]


def preprocessor(tile_size: int = 32, weights: list[float] | None = None) -> SegmentationPreprocessor:
    return SegmentationPreprocessor(tile_size, LABELS, ["#000000", "#ff0000", "#00ff00"], weights or [])


@pytest.mark.parametrize(("height", "width"), [(32, 32), (32, 48), (64, 16)])
def test_the_unet_scores_every_pixel_of_any_size_divisible_by_its_scales(height: int, width: int) -> None:
    model = UNet(len(LABELS), width=8, depth=2).eval()
    logits, loss = model(torch.randn(2, 3, height, width))
    assert logits.shape == (2, len(LABELS), height, width) and loss is None


def test_unlabelled_pixels_do_not_count_in_the_loss() -> None:
    torch.manual_seed(0)
    model = UNet(len(LABELS), width=8, depth=2).eval()
    pixels, classes = torch.randn(1, 3, 32, 32), torch.randint(0, 3, (1, 32, 32))
    unlabelled = classes.clone()
    unlabelled[:, :16] = IGNORE
    logits, loss = model(pixels, unlabelled)
    expected = F.cross_entropy(logits[:, :, 16:], classes[:, 16:])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_class_weights_from_the_preprocessor_weigh_the_loss(config: Config) -> None:
    torch.manual_seed(0)
    weights = [0.5, 3.0, 1.0]
    model = build_model(replace(config, depth=2), preprocessor(weights=weights)).eval()
    pixels, classes = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    logits, loss = model(pixels, classes)
    assert loss.item() == pytest.approx(
        F.cross_entropy(logits, classes, weight=torch.tensor(weights)).item(), rel=1e-5
    )


def test_a_tile_the_unet_cannot_halve_often_enough_is_refused(config: Config) -> None:
    with pytest.raises(ProjectError, match="divisible by 2\\^depth"):
        build_model(replace(config, depth=3), preprocessor(tile_size=20))


def test_iou_per_class_and_its_mean_from_known_pixels() -> None:
    metrics = EvalMetrics(LABELS, torch.device("cpu"))
    targets = torch.tensor([[[0, 0, 1, 1], [2, 2, IGNORE, IGNORE]]])
    predicted = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 1]]])  # the last two are unlabelled: not counted
    logits = F.one_hot(predicted, len(LABELS)).permute(0, 3, 1, 2).float()
    metrics.update(logits, targets, torch.tensor(0.5))
    results = metrics.compute()
    # other: 1 right, 1 labelled but missed, 1 wrongly claimed -> 1/3; building: 2 of 3 claimed -> 2/3;
    # road: 1 right, 1 missed -> 1/2.
    assert results["iou_other"] == pytest.approx(1 / 3)
    assert results["iou_building"] == pytest.approx(2 / 3)
    assert results["iou_road"] == pytest.approx(1 / 2)
    assert results["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert results["worst_class_iou"] == pytest.approx(1 / 3)
    assert results["accuracy"] == pytest.approx(4 / 6)
    assert results["predicted_classes"] == 3 and results["eval_loss"] == pytest.approx(0.5)


def test_a_class_neither_labelled_nor_predicted_is_left_out_of_the_mean() -> None:
    metrics = EvalMetrics(LABELS, torch.device("cpu"))
    targets = torch.tensor([[[0, 1]]])
    logits = F.one_hot(targets, len(LABELS)).permute(0, 3, 1, 2).float()
    metrics.update(logits, targets, torch.tensor(0.1))
    results = metrics.compute()
    assert results["miou"] == 1.0 and results["iou_road"] == 0.0 and results["predicted_classes"] == 2


def test_class_names_become_metric_names() -> None:
    assert metric_name("Low vegetation") == "low_vegetation"
    assert metric_name(" Water ") == "water" and metric_name("car/truck") == "car_truck"


def test_a_hugging_face_segmenter_scores_every_pixel_at_full_resolution(
    config: Config, tmp_path: Path
) -> None:
    """A tiny SegFormer saved to a local folder (no download) and loaded as a pretrained one, its
    head resized to these classes: the logits it predicts at a quarter of the resolution come back
    at the input's size, and it exports as a program of any height and width."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    folder = tmp_path / "tiny-segformer"
    tiny = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
    )
    SegformerForSemanticSegmentation(tiny).save_pretrained(folder)
    model = build_model(replace(config, model_name=str(folder)), preprocessor(weights=[1.0, 2.0, 1.0]))
    pixels, classes = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    logits, loss = model(pixels, classes)
    assert logits.shape == (2, len(LABELS), 32, 32) and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    # `runner.py export` takes it too, its height and width free (multiples of 32, up to 128 here).
    segmenter = Probabilities(model.eval(), dim=1)
    save_program(segmenter, torch.zeros(2, 3, 64, 64), tmp_path / "s.pt2", side_unit=32, largest_side=128)
    program = torch.export.load(tmp_path / "s.pt2").module()
    for shape in ((1, 3, 32, 128), (3, 3, 96, 64)):
        pixels = torch.randn(shape)
        with torch.no_grad():
            assert torch.allclose(program(pixels), segmenter(pixels), atol=1e-5)
