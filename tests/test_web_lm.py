"""The causal-LM project's pages in headless Chromium, against its real server: generation streamed
into the page, an instruction-tuned run's answers, and the dashboard of a real short run.

One project is rendered with `ccpt new`, trained for a few steps and served for the whole module;
a second, trained on the instruction data, serves the instruction test.
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

# The tiny model on a slice of the standard library's source (as the project's own tests use).
TINY = ["model_size=tiny", "corpus_mb=0.4", "block_size=64", "batch_size=8", "eval_batches=4"]
LOGGING = ["eval_every=5", "log_every=2"]
TRAIN = ["--max-steps", "20", *[part for setting in TINY + LOGGING for part in ("--set", setting)]]
PROMPT = "def main("


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-lm"), "causal-lm", TRAIN) as served:
        yield served


@pytest.fixture(scope="module")
def instruction_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    """A run on the instruction data (briefly, from scratch: what matters here is how it is served)."""
    train = [*TRAIN, "--set", "dataset=instructions"]
    with served_project(tmp_path_factory.mktemp("web-lm-chat"), "causal-lm", train) as served:
        yield served


def set_generation(page: object, prompt: str, tokens: int, temperature: float) -> None:
    page.get_by_role("textbox", name="Prompt", exact=True).fill(prompt)
    page.get_by_label("Tokens to generate").fill(str(tokens))
    page.get_by_label("Temperature").fill(str(temperature))


def test_a_prompt_streams_its_continuation_into_the_page(project: ServedProject, browser: object) -> None:
    settings = {"prompt": PROMPT, "max_new_tokens": 48, "temperature": 0, "top_k": 50}
    status, expected = http(f"{project.url}/predict", json.dumps(settings).encode())
    assert status == 200
    with open_page(browser, project.url + "/") as (page, _):
        assert_every_control_is_labelled(page)
        # Count the changes to the output as they happen: a stream shows up piece by piece.
        page.evaluate(
            """() => {
                window.updates = 0;
                new MutationObserver(() => { window.updates += 1; })
                    .observe(document.getElementById('completion'), {childList: true, characterData: true});
            }"""
        )
        set_generation(page, PROMPT, 48, 0)
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function(
            "() => document.getElementById('generation-stats').textContent.includes('characters in')"
        )
        completion = page.text_content("#completion")
        assert completion == expected["completion"].rstrip("\ufffd") and completion  # greedy: the same text
        assert page.text_content("#prompt-echo") == PROMPT
        assert page.evaluate("window.updates") > 1
        assert not page.is_disabled("#generate") and page.is_disabled("#stop")
        # Sampled (temperature 0.8) rather than greedy text for the screenshot: more to look at.
        set_generation(page, PROMPT, 240, 0.8)
        page.get_by_role("button", name="Generate").click()  # sets "Generating…" as it is clicked
        page.wait_for_function(
            "() => document.getElementById('generation-stats').textContent.includes('characters in')"
        )
        page.wait_for_selector("#examples button")
        screenshot(page, "lm-playground")
        assert_readable_on_a_phone(page, "lm-playground-phone")


def test_a_run_tuned_on_instructions_is_asked_an_instruction_and_answers_at_its_likeliest(
    instruction_project: ServedProject, browser: object
) -> None:
    url = instruction_project.url
    health = http(f"{url}/health")[1]
    assert health["chat"] is True and health["temperature"] == 0
    with open_page(browser, url + "/") as (page, _):
        page.wait_for_function("() => document.getElementById('page-title').textContent === 'Ask the model'")
        assert_every_control_is_labelled(page)
        instruction = page.get_by_role("textbox", name="Instruction", exact=True)
        assert instruction.input_value().startswith("List the parameters of def ")
        assert page.get_by_label("Temperature").input_value() == "0"
        page.wait_for_selector("#examples button")
        assert page.inner_text("#examples-heading") == "Or try a validation instruction"
        page.click("#examples button >> nth=0")
        asked = instruction.input_value()  # a held-out instruction
        assert asked.startswith(("List the parameters of ", "Summarize: ")), asked
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function(
            "() => document.getElementById('generation-stats').textContent.includes('characters in')"
        )
        # The page's default is the server's: the most likely answer, as /predict gives it unasked.
        unasked = {"prompt": asked, "max_new_tokens": 96}  # the page's default length, no temperature
        status, expected = http(f"{url}/predict", json.dumps(unasked).encode())
        assert status == 200 and "well_formed" in expected
        # (The page shows only whole characters: a byte model's cut-off one is left out.)
        assert page.text_content("#completion") == expected["completion"].rstrip("\ufffd")
        assert page.text_content("#prompt-echo") == asked + "\n"  # the answer starts on a line of its own
        screenshot(page, "lm-playground-instructions")


def test_ctrl_enter_in_the_prompt_generates(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        tab_to(page, "prompt")
        page.keyboard.press("Control+End")
        page.keyboard.type(" x")
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            "() => document.getElementById('generation-stats').textContent.includes('characters in')"
        )
        assert page.text_content("#prompt-echo") == PROMPT + " x"


def test_stop_ends_a_long_generation(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        set_generation(page, PROMPT, 1024, 0.8)
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("() => document.getElementById('completion').textContent.length > 0")
        page.get_by_role("button", name="Stop").click()
        page.wait_for_function(
            "() => document.getElementById('generation-stats').textContent.startsWith('Stopped')"
        )
        stopped_at = len(page.text_content("#completion"))
        assert 0 < stopped_at < 1024 and not page.is_visible("#error")
        assert not page.is_disabled("#generate")
    assert http(f"{project.url}/health")[0] == 200


def test_bad_settings_show_the_servers_reason(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        set_generation(page, PROMPT, 16, 9)
        with page.expect_response("**/api/generate") as answer:
            page.get_by_role("button", name="Generate").click()
        assert answer.value.status == 422
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == "temperature: Input should be less than or equal to 5"
        assert page.inner_text("#generation-stats") == "Nothing generated."
        # The field named in the message is marked invalid and has the focus, to fix it at once.
        assert page.get_attribute("#temperature", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "temperature"
        screenshot(page, "lm-playground-bad-input")
        page.keyboard.press("Control+A")
        page.keyboard.type("0.5")
        page.keyboard.press("Enter")  # submits the form
        page.wait_for_function(
            "() => document.getElementById('generation-stats').textContent.includes('characters in')"
        )
        assert page.get_attribute("#temperature", "aria-invalid") is None and not page.is_visible("#error")


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/api/generate", b"{not json", "JSON"),
        ("/api/generate", b'{"prompt": "x", "max_new_tokens": 0}', "max_new_tokens"),
        ("/api/generate", b'{"max_new_tokens": 4}', "prompt"),
        ("/predict", b'{"prompt": ["a list"]}', "prompt"),
    ],
)
def test_malformed_requests_get_a_422_and_the_server_lives_on(
    project: ServedProject, path: str, body: bytes, reason: str
) -> None:
    status, answer = http(project.url + path, body)
    assert status == 422 and reason in answer["detail"]
    assert http(f"{project.url}/health")[0] == 200


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/runs") as (page, _):
        assert_dashboard_shows_run(
            page, project, ["loss", "lr", "tokens_per_s", "grad_norm"], ["eval_loss", "perplexity"]
        )
        assert (
            page.locator('figure[data-chart="perplexity"] figcaption').inner_text() == "Validation perplexity"
        )
        screenshot(page, "lm-dashboard")
        assert_readable_on_a_phone(page, "lm-dashboard-phone")
