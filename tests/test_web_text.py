"""The text-classification project's pages in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained for a few steps and served for the whole module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.web_support import (
    ServedProject,
    assert_dashboard_shows_run,
    assert_every_control_is_labelled,
    assert_readable_on_a_phone,
    http,
    open_page,
    screenshot,
    served_project,
    tab_to,
)

pytestmark = pytest.mark.slow

# Small settings (as the project's own tests use) so that a few steps take seconds on a CPU.
TINY = ["max_length=64", "vocab_size=2000", "n_embd=64", "batch_size=32", "eval_every=5", "log_every=2"]
TRAIN = ["--max-steps", "20", *[part for setting in TINY for part in ("--set", setting)]]
TEXT = "Return a new list containing all items from the iterable in ascending order."


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-text"), "text-classification", TRAIN) as served:
        yield served


def shown_bars(page: object) -> list[list[object]]:
    return page.eval_on_selector_all(
        "#bars li", "items => items.map(li => [li.dataset.label, Number(li.dataset.probability)])"
    )


def test_a_typed_text_gets_the_servers_label_probabilities(project: ServedProject, browser: object) -> None:
    status, expected = http(f"{project.url}/predict", json.dumps({"text": TEXT}).encode())
    assert status == 200
    with open_page(browser, project.url + "/") as (page, _):
        assert_every_control_is_labelled(page)
        page.get_by_label("Text to classify").fill(TEXT)
        page.get_by_role("button", name="Classify").click()
        page.wait_for_selector("#bars li")
        assert shown_bars(page) == [[t["label"], t["probability"]] for t in expected["top"]]
        assert page.inner_text("#verdict").startswith(f"Predicted label: {expected['label']}")
        page.wait_for_selector("#examples button")
        screenshot(page, "text-playground")
        assert_readable_on_a_phone(page, "text-playground-phone")


def test_ctrl_enter_in_the_text_box_classifies(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        tab_to(page, "text")
        page.keyboard.type("Open the file and return a stream.")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#bars li")
        assert not page.is_visible("#error")


def test_a_validation_text_is_classified_from_one_click(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        page.wait_for_selector("#examples button")
        example = page.locator("#examples button").first
        text = example.get_attribute("title")
        example.click()
        page.wait_for_selector("#bars li")
        assert page.input_value("#text") == text and text


def test_an_empty_text_is_refused_on_the_page_without_a_request(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.get_by_role("button", name="Classify").click()
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == "Type or paste a text to classify first."
        assert page.evaluate("document.activeElement.id") == "text"  # back to the box to type in
        assert page.get_attribute("#text", "aria-invalid") == "true"
        assert not [url for url in requests if url.endswith("/predict")]


def test_a_text_over_the_limit_shows_the_servers_reason(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        page.fill("#text", "x" * 100_001)
        with page.expect_response("**/predict") as answer:
            page.get_by_role("button", name="Classify").click()
        assert answer.value.status == 422
        page.wait_for_selector("#error:not([hidden])")
        assert "text" in page.inner_text("#error") and "100000 characters" in page.inner_text("#error")
        assert page.locator("#bars li").count() == 0
        assert page.get_attribute("#text", "aria-invalid") == "true"
        screenshot(page, "text-playground-bad-input")


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"{not json", "JSON"), (b'{"text": 5}', "text"), (b"[]", "dict"), (b'{"words": "hello"}', "text")],
)
def test_malformed_requests_get_a_422_and_the_server_lives_on(
    project: ServedProject, body: bytes, reason: str
) -> None:
    status, answer = http(f"{project.url}/predict", body)
    assert status == 422 and reason in answer["detail"]
    assert http(f"{project.url}/health")[0] == 200


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/runs") as (page, _):
        assert_dashboard_shows_run(
            page, project, ["loss", "lr", "samples_per_s", "grad_norm"], ["eval_loss", "accuracy", "macro_f1"]
        )
        screenshot(page, "text-dashboard")
        assert_readable_on_a_phone(page, "text-dashboard-phone")
