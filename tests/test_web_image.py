"""The image-classification project's pages in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained for a few steps and served for the whole module.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.web_support import (
    ServedProject,
    assert_a_file_over_10_mb_is_refused_before_uploading,
    assert_dashboard_shows_run,
    assert_every_control_is_labelled,
    assert_readable_on_a_phone,
    choose_file,
    choose_with_space,
    drawn_series,
    http,
    multipart,
    open_page,
    path_points,
    screenshot,
    served_project,
    tab_to,
)

pytestmark = pytest.mark.slow

LIVE_LOGGING = ["--set", "log_every=5", "--set", "eval_every=50", "--set", "width=16"]
TRAIN = ["--max-steps", "20", "--set", "eval_every=5", "--set", "log_every=2", "--set", "width=16"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-image"), "image-classification", TRAIN) as served:
        yield served


def digit_png(index: int, size: int = 8) -> bytes:
    """One of scikit-learn's real handwritten digits as a PNG file, and nothing else."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[index] * (255 / 16)).round().astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def shown_bars(page: object) -> list[tuple[str, float]]:
    return page.eval_on_selector_all(
        "#bars li", "items => items.map(li => [li.dataset.label, Number(li.dataset.probability)])"
    )


def test_an_uploaded_digit_gets_the_servers_ranked_labels_as_bars(
    project: ServedProject, browser: object
) -> None:
    image = digit_png(1796, size=64)
    status, expected = http(f"{project.url}/predict?top_k=5", *multipart("file", "digit.png", image))
    assert status == 200
    with open_page(browser, project.url + "/") as (page, _):
        assert_every_control_is_labelled(page)
        choose_file(page, "digit.png", "image/png", image)
        page.wait_for_selector("#bars li")
        assert shown_bars(page) == [[t["label"], t["probability"]] for t in expected["top"]]
        assert page.inner_text("#verdict").startswith(f"Predicted label: {expected['label']}")
        assert page.is_visible("#preview") and not page.is_visible("#error")
        page.wait_for_selector("#examples img")
        screenshot(page, "image-playground")
        assert_readable_on_a_phone(page, "image-playground-phone")


def test_changing_the_label_count_ranks_again_and_a_bad_count_is_flagged(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        choose_file(page, "five.png", "image/png", digit_png(5))
        page.wait_for_function("() => document.querySelectorAll('#bars li').length === 5")
        page.fill("#top-k", "0")
        page.press("#top-k", "Tab")  # leaving the field commits the change, as from the keyboard
        page.wait_for_selector("#error:not([hidden])")
        assert "top_k: Input should be greater than or equal to 1" in page.inner_text("#error")
        assert page.get_attribute("#top-k", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "top-k"
        page.fill("#top-k", "3")
        page.press("#top-k", "Tab")
        page.wait_for_function("() => document.querySelectorAll('#bars li').length === 3")
        assert page.get_attribute("#top-k", "aria-invalid") is None and not page.is_visible("#error")


def test_the_file_dialog_opens_from_the_keyboard(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        tab_to(page, "file")
        choose_with_space(page, "two.png", digit_png(2))
        page.wait_for_selector("#bars li")


def test_a_dropped_digit_is_classified(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        page.evaluate(
            """bytes => {
                const file = new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"});
                const transfer = new DataTransfer();
                transfer.items.add(file);
                const zone = document.getElementById("drop-zone");
                const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
                zone.dispatchEvent(new DragEvent("dragover", init));
                zone.dispatchEvent(new DragEvent("drop", init));
            }""",
            list(digit_png(0)),
        )
        page.wait_for_selector("#bars li")
        assert len(shown_bars(page)) == 5


def test_a_validation_example_is_classified_from_one_click(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        page.wait_for_selector("#examples button")
        assert page.locator("#examples img").count() == 6
        page.locator("#examples button").first.focus()
        page.keyboard.press("Enter")  # keyboard users pick examples the same way
        page.wait_for_selector("#bars li")


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        with page.expect_response("**/predict*") as answer:
            choose_file(page, "notes.txt", "text/plain", b"hello")
        assert answer.value.status == 415
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error").startswith("notes.txt: the upload is not an image")
        assert page.locator("#bars li").count() == 0 and not page.is_visible("#preview")
        assert page.get_attribute("#error", "role") == "alert"
        screenshot(page, "image-playground-bad-upload")
    status, body = http(f"{project.url}/health")
    assert status == 200 and body["status"] == "ok"  # the server lives on


def test_a_file_over_10_mb_is_refused_by_the_page_and_the_server(
    project: ServedProject, browser: object, tmp_path: Path
) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        assert_a_file_over_10_mb_is_refused_before_uploading(page, tmp_path)
    status, body = http(f"{project.url}/predict", *multipart("file", "huge.png", bytes(10 * 2**20 + 1)))
    assert status == 413 and "larger than 10 MB" in body["detail"]


def test_the_api_refuses_bad_dashboard_requests_with_a_4xx(project: ServedProject) -> None:
    assert http(f"{project.url}/api/runs/no-such-run")[0] == 404
    assert http(f"{project.url}/api/runs/..%2F..%2Fetc")[0] == 404
    assert http(f"{project.url}/api/runs/first?offset=-1")[0] == 422
    assert http(f"{project.url}/api/check?run=nope")[0] == 404
    status, body = http(f"{project.url}/predict", b"{not json", "application/json")
    assert status == 422 and body["detail"]


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    records = project.records()
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert len(train) == 10 and len(evals) == 4  # 20 steps, a line every 2, an evaluation every 5
    with open_page(browser, project.url + "/runs?run=first") as (page, _):
        assert_every_control_is_labelled(page)
        assert_dashboard_shows_run(
            page, project, ["loss", "lr", "samples_per_s", "grad_norm"], ["eval_loss", "accuracy", "macro_f1"]
        )
        screenshot(page, "image-dashboard")
        assert_readable_on_a_phone(page, "image-dashboard-phone")


def test_a_failed_anti_pattern_gate_shows_what_to_try(project: ServedProject, browser: object) -> None:
    """The dashboard lists the hints `runner.py check --json` gives its failed gates, in order."""
    spec = project.root / "specs" / "task.yaml"
    original = spec.read_text()
    always = {"metric": "split_overlap", "op": ">=", "value": 0}  # 0 copies >= 0: the penalty triggers
    triggered = {"text": "Any validation image", "threshold": always}
    data = yaml.safe_load(original)
    data["penalties"] = [*(data.get("penalties") or []), triggered]
    try:
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        checked = json.loads(project.runner("check", "--run", project.run_dir.name, "--json").stdout)
        expected = [[gate["metric"], f"{gate['metric']}: {gate['hint']}"] for gate in checked if gate["hint"]]
        assert [metric for metric, _ in expected if metric == "split_overlap"] == ["split_overlap"]
        with open_page(browser, f"{project.url}/runs?run={project.run_dir.name}") as (page, _):
            page.wait_for_selector("#gate-hints li")
            shown = page.eval_on_selector_all(
                "#gate-hints li", "items => items.map(item => [item.dataset.metric, item.textContent])"
            )
        assert shown == expected
    finally:
        spec.write_text(original)


def test_the_served_model_is_named_in_every_pages_header(project: ServedProject, browser: object) -> None:
    for path in ("/", "/runs"):
        with open_page(browser, project.url + path) as (page, _):
            page.wait_for_function(
                "() => document.getElementById('served-model').textContent.includes('step')"
            )
            assert page.inner_text("#served-model").startswith("image-classification · run first · step ")


def test_a_long_run_with_a_nan_is_drawn_thinned_with_its_extremes_and_a_gap(
    project: ServedProject, browser: object
) -> None:
    run = project.root / "runs" / "long"
    run.mkdir()
    shutil.copy(project.run_dir / "config.json", run)
    rng = random.Random(0)
    losses = [2.3 * math.exp(-step / 1500) + 0.1 + rng.random() * 0.2 for step in range(1, 6001)]
    losses[3000] = math.nan  # a diverged step: logged as NaN, served as null, drawn as a gap
    with (run / "metrics.jsonl").open("w") as metrics:
        for step, loss in enumerate(losses, start=1):
            metrics.write(json.dumps({"kind": "train", "step": step, "loss": loss, "lr": 1e-3}) + "\n")
    os.utime(run / "metrics.jsonl", (1, 1))  # an old run: not the latest, not training
    try:
        with open_page(browser, project.url + "/runs?run=long") as (page, _):
            page.wait_for_selector('path.series[data-series="loss"]')
            assert page.inner_text("#run-status") == "stopped"
            drawn = drawn_series(page, "loss")
            points = path_points(drawn["d"])
            width = page.eval_on_selector("#charts .plot", "plot => plot.clientWidth")
            assert len(points) == drawn["count"] <= 4 * width + 8 < len(losses)
            assert drawn["d"].count("M") == 2  # the line breaks once, at the NaN
            # First and last steps, and the highest and lowest losses, survive the thinning.
            (x_first, _), (x_last, _) = points[0], points[-1]

            def x_of(step: int) -> float:
                return x_first + (step - 1) * (x_last - x_first) / (len(losses) - 1)

            finite = [(loss, step) for step, loss in enumerate(losses, start=1) if not math.isnan(loss)]
            top, bottom = min(y for _, y in points), max(y for _, y in points)  # SVG y grows downwards
            for (_, step), y_wanted in ((max(finite), top), (min(finite), bottom)):
                assert any(abs(x - x_of(step)) < 0.6 and abs(y - y_wanted) < 0.15 for x, y in points), step
    finally:
        shutil.rmtree(run)


def test_the_dashboard_follows_a_run_while_it_trains(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/runs") as (page, _):
        page.wait_for_selector('path.series[data-series="loss"]')
        # Note (status, loss points drawn) each time the page redraws its charts.
        page.evaluate(
            """() => {
                window.redraws = [];
                new MutationObserver(() => {
                    const path = document.querySelector('path.series[data-series="loss"]');
                    const status = document.getElementById('run-status').textContent;
                    if (path) window.redraws.push([status, Number(path.dataset.points)]);
                }).observe(document.getElementById('charts'), {childList: true, subtree: true});
            }"""
        )
        # Long enough (several of the page's 1.5 s polls even on an idle machine) to be seen training.
        live = project.start_runner("train", "--run-name", "live", "--max-steps", "600", *LIVE_LOGGING)
        try:
            # The page switches to the new run by itself and draws it while it trains.
            page.wait_for_function(
                """() => document.getElementById('run-status').textContent === 'training'
                     && document.querySelector('#run-select option[value="live"]')""",
                timeout=90_000,
            )
            screenshot(page, "image-dashboard-training")
            assert live.wait(timeout=240) == 0, live.stdout.read()
        finally:
            if live.poll() is None:
                live.kill()
        page.wait_for_function(
            "() => document.getElementById('run-status').textContent === 'finished'", timeout=30_000
        )
        train = [r for r in project.records(project.root / "runs" / "live") if r["kind"] == "train"]
        assert drawn_series(page, "loss")["count"] == len(train) == 120
        while_training = [
            points for status, points in page.evaluate("window.redraws") if status == "training"
        ]
        # Drawn more than once while it trained, growing towards the whole run.
        assert len(set(while_training)) >= 2 and while_training == sorted(while_training), while_training
        assert while_training[-1] <= len(train)
        page.wait_for_selector("#gates tbody tr", timeout=60_000)
