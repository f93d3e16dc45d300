"""The detector and its metrics: shapes, the loss, decoding peaks into boxes, AP from known matches."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from config import Config, ProjectError
from data import STRIDE, DetectionPreprocessor, encode_targets
from metrics import EvalMetrics, average_precision, box_iou, match_frame, metric_name
from network import PRIOR, CenterNet, build_model, decode, focal_loss

LABELS = ["person", "forklift"]


def preprocessor() -> DetectionPreprocessor:
    return DetectionPreprocessor(64, 48, LABELS, ["#e4572e", "#1e88e5"], score_threshold=0.3)


def outputs_from_targets(targets: torch.Tensor, classes: int) -> torch.Tensor:
    """What a perfect detector outputs: sure logits at the centre cells, the targets' sizes and
    offsets everywhere."""
    centres = targets[:classes].eq(1).float()
    logits = torch.where(centres > 0, torch.tensor(8.0), torch.tensor(-8.0))
    return torch.cat([logits, targets[classes : classes + 4]])[None]


@pytest.mark.parametrize(("height", "width"), [(48, 64), (96, 160), (192, 320)])
def test_the_detector_scores_every_cell_at_a_quarter_of_the_input(height: int, width: int) -> None:
    model = CenterNet(len(LABELS), width=8, head_width=16).eval()
    outputs, loss = model(torch.randn(2, 3, height, width))
    assert outputs.shape == (2, len(LABELS) + 4, height // STRIDE, width // STRIDE) and loss is None


def test_the_heatmaps_start_near_the_prior_so_empty_cells_do_not_swamp_the_loss() -> None:
    torch.manual_seed(0)
    outputs, _ = CenterNet(len(LABELS), width=8, head_width=16).eval()(torch.randn(1, 3, 48, 64))
    assert outputs[:, : len(LABELS)].sigmoid().mean().item() == pytest.approx(PRIOR, rel=0.5)


def test_the_loss_is_finite_and_falls_on_one_batch() -> None:
    torch.manual_seed(0)
    model = CenterNet(len(LABELS), width=8, head_width=16)
    boxes = [(0, 4.0, 6.0, 16.0, 40.0), (1, 30.0, 10.0, 60.0, 40.0)]
    targets = encode_targets(boxes, 2, 64, 48)[None].repeat(4, 1, 1, 1)
    pixels = torch.randn(4, 3, 48, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        _, loss = model(pixels, targets)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(math.isfinite(value) for value in losses) and losses[-1] < losses[0] / 2


def test_the_focal_loss_of_a_sure_right_answer_is_near_zero_and_of_a_wrong_one_large() -> None:
    heatmaps = torch.zeros(1, 1, 4, 4)
    heatmaps[0, 0, 1, 2] = 1.0
    right = torch.full((1, 1, 4, 4), -9.0)
    right[0, 0, 1, 2] = 9.0
    assert focal_loss(right, heatmaps).item() < 1e-3
    assert focal_loss(-right, heatmaps).item() > 5


def test_decoding_a_perfect_output_gives_back_the_boxes() -> None:
    boxes = [(0, 4.0, 6.0, 16.0, 40.0), (1, 30.0, 10.0, 60.0, 40.0), (0, 40.0, 2.0, 46.0, 14.0)]
    outputs = outputs_from_targets(encode_targets(boxes, 2, 64, 48), 2)
    decoded = decode(outputs, min_score=0.5)[0]
    assert len(decoded) == 3
    found = [value for box in sorted((label, *box) for label, _, *box in decoded) for value in box]
    assert found == pytest.approx([value for box in sorted(boxes) for value in box], abs=1e-3)
    assert all(score > 0.99 for _, score, *_ in decoded)


def test_only_the_peak_of_a_bump_becomes_a_box() -> None:
    outputs = torch.zeros(1, 1 + 4, 8, 8)
    outputs[0, 0] = -8.0
    outputs[0, 0, 3, 3], outputs[0, 0, 3, 4], outputs[0, 0, 4, 3] = 4.0, 2.0, 1.0  # one object, blurred
    outputs[0, 0, 6, 7] = 3.0  # another
    decoded = decode(outputs, min_score=0.3)[0]
    assert [(round(x0 + 2), round(y0 + 2)) for _, _, x0, y0, _, _ in decoded] == [(12, 12), (28, 24)]


def test_a_pretrained_model_name_is_refused_in_one_line(config: Config) -> None:
    with pytest.raises(ProjectError, match="model_name is not used"):
        build_model(replace(config, model_name="facebook/detr-resnet-50"), preprocessor())


def test_iou_of_known_boxes() -> None:
    assert box_iou((0, 0, 10, 10), [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)]) == pytest.approx(
        [1.0, 1 / 3, 0.0]
    )


def test_matching_is_greedy_by_score_and_one_box_is_found_once() -> None:
    truths = [(0, 0.0, 0.0, 10.0, 10.0), (1, 20.0, 20.0, 30.0, 30.0)]
    predictions = [
        (0, 0.6, 1.0, 1.0, 10.0, 10.0),  # the person, but a better box scores higher below
        (0, 0.9, 0.0, 0.0, 10.0, 10.0),
        (1, 0.8, 0.0, 0.0, 10.0, 10.0),  # a forklift where the person is
        (1, 0.7, 21.0, 21.0, 31.0, 31.0),
    ]
    assert match_frame(predictions, truths, 2) == [
        (0, 0.9, True),
        (1, 0.8, False),
        (1, 0.7, True),
        (0, 0.6, False),
    ]


def test_average_precision_of_known_rankings() -> None:
    assert average_precision([(0.9, True), (0.8, True)], positives=2) == pytest.approx(1.0)
    # A false positive ranked first: precision 1/2 at recall 1/2, 2/3 at recall 1, made monotone.
    assert average_precision([(0.9, False), (0.8, True), (0.7, True)], positives=2) == pytest.approx(2 / 3)
    assert average_precision([(0.9, True)], positives=4) == pytest.approx(0.25)  # three boxes missed
    assert average_precision([], positives=3) == 0.0


def test_metrics_of_a_perfect_detector_and_recall_at_the_threshold() -> None:
    boxes = [[(0, 4.0, 6.0, 16.0, 40.0), (1, 30.0, 10.0, 60.0, 40.0)], [(0, 40.0, 2.0, 52.0, 30.0)]]
    targets = torch.stack([encode_targets(frame, 2, 64, 48) for frame in boxes])
    outputs = torch.cat([outputs_from_targets(t, 2) for t in targets])
    metrics = EvalMetrics(LABELS, 0.3, torch.device("cpu"))
    metrics.update(outputs, targets, torch.tensor(0.5))
    results = metrics.compute()
    assert results["map"] == pytest.approx(1.0) and results["recall_person"] == 1.0
    assert results["precision_forklift"] == 1.0 and results["boxes"] == 3 and results["examples"] == 2
    # The person of the second frame found less surely than the threshold: missed at it.
    outputs[1, 0][outputs[1, 0] > 0] = math.log(0.2 / 0.8)
    strict = EvalMetrics(LABELS, 0.3, torch.device("cpu"))
    strict.update(outputs, targets, torch.tensor(0.5))
    assert strict.compute()["recall_person"] == pytest.approx(0.5)


def test_class_names_become_metric_names() -> None:
    assert metric_name("Fork lift") == "fork_lift" and metric_name("person") == "person"
