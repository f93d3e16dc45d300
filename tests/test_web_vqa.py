"""The visual-question-answering project's playground in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained for a few steps (a narrow chart reader: the page is
under test, not the model) and served for the whole module. What the page shows (the answer, its
probability, the question it answers and every answer ranked with its probability) is compared with
what POST /predict answers for the same chart bytes and question, never with hard-coded model output.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web_support import (
    ServedProject,
    assert_a_file_over_10_mb_is_refused_before_uploading,
    assert_dashboard_shows_run,
    assert_every_control_is_labelled,
    assert_readable,
    assert_readable_on_a_phone,
    choose_file,
    choose_with_space,
    colours_of,
    example_png,
    http,
    open_page,
    open_playground,
    png_bytes,
    screenshot,
    served_project,
    shown_colours,
    tab_to,
    to_fixed,
)

pytestmark = pytest.mark.slow

# A one-layer reader of 64-pixel charts: a few seconds on a CPU.
TRAIN = [
    "--max-steps", "40",
    "--set", "eval_every=20",
    "--set", "log_every=5",
    "--set", "n_embd=32",
    "--set", "n_layer=1",
    "--set", "batch_size=32",
    "--set", "eval_batches=4",
]  # fmt: skip
QUESTION = "What is the value of the blue bar?"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-vqa"), "visual-question-answering", TRAIN) as served:
        yield served


def chart_form(name: str, chart: bytes, question: str) -> tuple[bytes, str]:
    """A multipart/form-data body as the page sends it: the chart as a file, the question as a field."""
    boundary = "ccpt-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += chart + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="question"\r\n\r\n'.encode()
    body += question.encode() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def predicted(project: ServedProject, name: str, chart: bytes, question: str) -> dict:
    """What POST /predict answers for this chart and question: what the page must then show."""
    status, answer = http(f"{project.url}/predict", *chart_form(name, chart, question))
    assert status == 200, answer
    return answer


def refused(project: ServedProject, name: str, chart: bytes, question: str) -> tuple[int, str]:
    """The status and one-line reason of a request that POST /predict refuses."""
    status, answer = http(f"{project.url}/predict", *chart_form(name, chart, question))
    assert 400 <= status < 500 and answer["detail"] and "\n" not in answer["detail"], answer
    return status, answer["detail"]


def examples(project: ServedProject) -> list[dict]:
    status, body = http(f"{project.url}/api/examples")
    assert status == 200 and body["task"] == "visual-question-answering"
    return body["examples"]


def resized_png(data: bytes, width: int, height: int) -> bytes:
    """A PNG scaled to `width` x `height` (not keeping its proportions)."""
    from PIL import Image

    return png_bytes(Image.open(io.BytesIO(data)).resize((width, height), Image.BILINEAR))


def wait_for_answer(page: object) -> None:
    page.wait_for_selector("#answering:not([hidden])")


def percent(probability: float) -> str:
    """A probability as the page writes it: a percentage to one place (JavaScript's toFixed)."""
    return f"{to_fixed(probability * 100, 1)}%"


def shown_bars(page: object) -> list[list[str]]:
    """[answer, percentage] of each bar of the ranked answers, as shown."""
    return page.eval_on_selector_all(
        "#ranked li",
        "items => items.map(i => [i.querySelector('.label').innerText, i.querySelector('.value').innerText])",
    )


def assert_page_shows(page: object, answer: dict, answers: list[str] | None = None) -> None:
    """The result card shows `answer`: the answer in large type, its probability, the question it
    answers, and every answer ranked in the server's order with its probability."""
    ranked = [answer, *answer["alternatives"]]
    probabilities = [entry["probability"] for entry in ranked]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.001, answer
    if answers is not None:  # the run's answer classes: the model answers with one of them
        assert all(entry["answer"] in answers for entry in ranked), answer
    assert page.inner_text("#answer") == answer["answer"]
    assert page.inner_text("#probability") == f"Probability {percent(answer['probability'])}."
    assert page.inner_text("#asked") == f"Question: {answer['question']}"
    assert shown_bars(page) == [[entry["answer"], percent(entry["probability"])] for entry in ranked]
    numbers = page.eval_on_selector_all(
        "#ranked li", "items => items.map(i => [i.dataset.label, Number(i.dataset.probability)])"
    )
    assert numbers == [[entry["answer"], entry["probability"]] for entry in ranked]
    assert page.is_visible("#answering") and page.is_visible("#preview")
    assert not page.is_visible("#error")


def run_answers(project: ServedProject) -> list[str]:
    return json.loads((project.run_dir / "preprocessor.json").read_text())["answers"]


def one_line(page: object, selector: str) -> bool:
    """Whether the text of `selector` fits on one line of its box."""
    lines = page.eval_on_selector(
        selector,
        "e => { const text = document.createRange(); text.selectNodeContents(e);"
        " return text.getClientRects().length; }",
    )
    return lines == 1


def test_an_uploaded_chart_and_a_typed_question_get_the_servers_answer(
    project: ServedProject, browser: object
) -> None:
    """A chart from the disk, of another size than the training charts, waits for a question; the
    question typed and Enter pressed, the page shows what /predict answers for the same bytes and
    question. Another chart chosen is asked the same question at once."""
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Ask a question about a chart"
        assert page.inner_text("#result-heading") == "Answer"
        assert page.inner_text("#verdict") == "Nothing asked yet."
        assert page.get_attribute("#verdict", "aria-live") == "polite"
        assert not page.is_visible("#answering") and not page.is_visible("#preview")
        assert_every_control_is_labelled(page)
        chart = resized_png(example_png(page, 0), 200, 150)
        expected = predicted(project, "chart.png", chart, QUESTION)
        assert len(expected["alternatives"]) == 4, expected  # five answers by default
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        choose_file(page, "chart.png", "image/png", chart)
        page.wait_for_function("() => document.getElementById('preview').naturalWidth === 200")
        assert page.inner_text("#verdict") == "Now ask a question about the chart."
        assert page.evaluate("document.activeElement.id") == "question"  # where to type it
        assert not [url for url in requests if "/predict" in url]  # nothing asked without a question
        page.keyboard.type(QUESTION)
        held: list[object] = []
        page.route("**/predict", lambda route: held.append(route))  # held to see the page wait
        page.keyboard.press("Enter")
        for _ in range(50):  # the route handler runs while Playwright waits
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        assert page.inner_text("#verdict") == "Reading the chart\u2026" and page.is_disabled("#ask")
        posted = held[0].request.post_data_buffer
        assert chart in posted and QUESTION.encode() in posted  # the very bytes and question
        with page.expect_response("**/predict") as answer:
            held[0].continue_()
        page.unroute("**/predict")
        assert answer.value.status == 200 and answer.value.json() == expected
        wait_for_answer(page)
        assert_page_shows(page, expected, run_answers(project))
        assert page.is_enabled("#ask")
        screenshot(page, "vqa-playground")

        second = resized_png(example_png(page, 3), 96, 120)
        again = predicted(project, "second.png", second, QUESTION)
        with page.expect_response("**/predict") as answer:
            choose_file(page, "second.png", "image/png", second)
        assert answer.value.json() == again
        page.wait_for_function("() => document.getElementById('preview').naturalWidth === 96")
        wait_for_answer(page)
        assert_page_shows(page, again, run_answers(project))


def test_a_validation_chart_is_asked_its_question_from_one_click(
    project: ServedProject, browser: object
) -> None:
    """One click on an example puts its question in the box and posts its PNG bytes with it, and
    the page shows what /predict answers for those."""
    offered = examples(project)
    assert len(offered) == 6 and all(example["question"].strip() for example in offered)
    with open_playground(browser, project.url) as page:
        chart = example_png(page, 2)
        assert page.locator("#examples img").count() == 6
        assert page.get_attribute("#examples img >> nth=2", "alt") == "Validation chart 3"
        assert page.locator("#examples button").nth(2).inner_text() == offered[2]["question"]
        expected = predicted(project, "example.png", chart, offered[2]["question"])
        with page.expect_response("**/predict") as answer:
            page.locator("#examples button").nth(2).click()
        assert answer.value.status == 200 and answer.value.json() == expected
        wait_for_answer(page)
        assert page.input_value("#question") == offered[2]["question"]
        assert_page_shows(page, expected, run_answers(project))
        shown = page.eval_on_selector("#preview", "i => [i.naturalWidth, i.naturalHeight]")
        assert shown == [64, 64]  # the example itself is previewed


def test_an_empty_question_shows_the_servers_reason_in_one_line(
    project: ServedProject, browser: object
) -> None:
    """An empty box and one of spaces only are both sent: the server's 422 shows in the alert box in
    one line, the question box is marked and has the focus, and the chart stays to ask again."""
    with open_playground(browser, project.url) as page:
        chart = example_png(page, 1)
        question = examples(project)[1]["question"]
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(1).click()  # an answer first: the error must replace it
        wait_for_answer(page)
        for typed in ("", "   "):
            status, reason = refused(project, "example-2.png", chart, typed)
            assert status == 422 and "question" in reason
            page.fill("#question", typed)
            with page.expect_response("**/predict") as response:
                page.get_by_role("button", name="Ask", exact=True).click()
            assert response.value.status == 422 and response.value.json() == {"detail": reason}
            page.wait_for_selector("#error:not([hidden])")
            assert page.inner_text("#error") == reason and one_line(page, "#error")
            assert page.get_attribute("#error", "role") == "alert"
            assert page.inner_text("#verdict") == "No answer."
            assert not page.is_visible("#answering") and page.locator("#ranked li").count() == 0
            assert page.get_attribute("#question", "aria-invalid") == "true"
            assert page.evaluate("document.activeElement.id") == "question"  # back to the box to type in
            assert page.is_visible("#preview")  # the chart is kept
        screenshot(page, "vqa-playground-empty-question")
        expected = predicted(project, "example-2.png", chart, question)
        page.fill("#question", question)
        with page.expect_response("**/predict"):
            page.keyboard.press("Enter")
        wait_for_answer(page)  # the page still works, and the marks of the error are gone
        assert_page_shows(page, expected)
        assert page.get_attribute("#question", "aria-invalid") is None


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    status, reason = refused(project, "notes.txt", b"hello", QUESTION)
    assert status == 415
    with open_playground(browser, project.url) as page:
        chart = example_png(page, 0)
        question = examples(project)[0]["question"]
        with page.expect_response("**/predict"):
            page.locator("#examples button").first.click()  # a result first: the error must replace it
        wait_for_answer(page)
        page.fill("#question", QUESTION)
        with page.expect_response("**/predict") as answer:
            choose_file(page, "notes.txt", "text/plain", b"hello")  # asked the typed question at once
        assert answer.value.status == 415 and answer.value.json() == {"detail": reason}
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == f"notes.txt: {reason}"  # one line of text, wrapped on a laptop
        assert page.inner_text("#verdict") == "No answer."
        assert not page.is_visible("#answering") and not page.is_visible("#preview")
        assert page.locator("#answer, #ranked li").count() == 0
        screenshot(page, "vqa-playground-bad-upload")
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.click("#ask")  # the file is forgotten: there is no chart to ask about
        assert page.inner_text("#error") == (
            "Choose a chart first: drop one here, choose a file or pick a validation chart."
        )
        assert not [url for url in requests if "/predict" in url]
        expected = predicted(project, "example.png", chart, question)
        with page.expect_response("**/predict"):
            page.locator("#examples button").first.click()  # the page still works, and the error goes
        wait_for_answer(page)
        assert_page_shows(page, expected)
    assert http(f"{project.url}/health")[0] == 200  # the server lives on


def test_a_file_over_10_mb_is_refused_before_uploading(
    project: ServedProject, browser: object, tmp_path: Path
) -> None:
    """The page refuses what the server would refuse with a 413, without sending it; what was
    shown stays."""
    status, reason = refused(project, "huge.png", bytes(10 * 2**20 + 1), QUESTION)
    assert status == 413 and "larger than 10 MB" in reason
    with open_playground(browser, project.url) as page:
        page.fill("#question", QUESTION)  # else nothing would be sent anyway
        assert_a_file_over_10_mb_is_refused_before_uploading(page, tmp_path)
        assert not page.is_visible("#answering")
        assert page.inner_text("#verdict") == "Nothing asked yet."
        offered = examples(project)[3]
        expected = predicted(project, "example.png", example_png(page, 3), offered["question"])
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(3).click()
        wait_for_answer(page)
        again = tmp_path / "again.png"
        again.write_bytes(bytes(10 * 2**20 + 1))
        page.set_input_files("#file", again)  # refused again: the answer and its chart stay
        page.wait_for_function("() => document.getElementById('error').textContent.startsWith('again.png')")
        assert page.is_visible("#error") and page.is_visible("#preview")
        assert page.inner_text("#answer") == expected["answer"]


def test_the_drop_zone_the_question_and_the_examples_work_from_the_keyboard(
    project: ServedProject, browser: object
) -> None:
    with open_playground(browser, project.url) as page:
        chart = resized_png(example_png(page, 5), 160, 120)
        question = "How many bars are there?"
        tab_to(page, "file")
        outline = page.evaluate("getComputedStyle(document.getElementById('drop-zone')).outlineStyle")
        assert outline == "solid"  # the zone shows where the focus is
        choose_with_space(page, "keys.png", chart)
        page.wait_for_function("() => document.activeElement.id === 'question'")  # the next thing to do
        page.keyboard.type(question)
        expected = predicted(project, "keys.png", chart, question)
        with page.expect_response("**/predict"):
            page.keyboard.press("Enter")
        wait_for_answer(page)
        assert_page_shows(page, expected)
        tab_to(page, "ask", presses=2)  # the next stop after the question
        offered = examples(project)[4]
        expected = predicted(project, "example.png", example_png(page, 4), offered["question"])
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('#examples') !== null")
        page.locator("#examples button").nth(4).focus()
        with page.expect_response("**/predict"):
            page.keyboard.press("Enter")  # an example is picked with the keyboard too
        page.wait_for_function(
            "question => document.getElementById('asked').textContent === `Question: ${question}`",
            arg=offered["question"],
        )
        assert_page_shows(page, expected)


def test_server_strings_are_shown_as_text(project: ServedProject, browser: object) -> None:
    """Whatever answers a model trained on other data gives go into the page as text: the server's
    reply for a chart, its answers replaced with markup, is shown as it is (none of it becomes an
    element); a reply with no alternatives shows its one answer."""
    with open_playground(browser, project.url) as page:
        chart = example_png(page, 0)
        real = predicted(project, "chart.png", chart, QUESTION)
        markup = "<img src=x onerror=\"document.title='owned'\"> 45"
        hostile = {
            **real,
            "question": "<b>which</b> bar?",
            "answer": markup,
            "alternatives": [{"answer": "<b>red</b>", "probability": 0.00125}],
        }
        hostile["probability"] = 0.9985
        title = page.title()
        page.fill("#question", QUESTION)
        page.route("**/predict", lambda route: route.fulfill(json=hostile))
        choose_file(page, "chart.png", "image/png", chart)
        wait_for_answer(page)
        assert_page_shows(page, hostile)
        assert shown_bars(page) == [[markup, "99.9%"], ["<b>red</b>", "0.1%"]]  # the markup as text
        assert page.locator("#result img, #result b").count() == 0
        page.unroute("**/predict")
        alone = {**real, "alternatives": []}
        page.route("**/predict", lambda route: route.fulfill(json=alone))
        page.click("#ask")
        page.wait_for_function("() => document.querySelectorAll('#ranked li').length === 1")
        assert_page_shows(page, alone)
        assert page.title() == title


def test_the_playground_is_readable_on_a_phone(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        offered = examples(project)[1]
        expected = predicted(project, "example.png", example_png(page, 1), offered["question"])
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(1).click()
        wait_for_answer(page)
        assert_page_shows(page, expected)
        assert_readable_on_a_phone(page, "vqa-playground-phone")
        page.set_viewport_size({"width": 390, "height": 844})
        # The examples' questions wrap within the phone's width: none sticks out of its button.
        assert page.eval_on_selector_all(
            "#examples button", "buttons => buttons.every(b => b.scrollWidth <= b.clientWidth)"
        )
        assert_page_shows(page, expected)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (answer, probability, ranked
    answers, question box, hints, buttons, examples, error line, drop zone) and what is behind it."""
    with open_playground(browser, project.url, scheme) as page:
        page.fill("#question", "")
        page.locator("#examples button").first.wait_for()
        chart = example_png(page, 2)
        choose_file(page, "chart.png", "image/png", chart)
        with page.expect_response("**/predict"):
            page.click("#ask")  # an empty question: the error line
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        offered = examples(project)[2]
        expected = predicted(project, "example.png", chart, offered["question"])
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(2).click()
        wait_for_answer(page)
        assert_page_shows(page, expected)
        checked += colours_of(page, [
            "h1", ".lead", "#drop-zone strong", "#file-hint", "label[for=question]", "#question",
            "#question-hint", "#ask", "#examples-hint", ".chart-example span", "#answer", "#asked",
            "#probability", "#ranked-heading", "#ranked .label", "#ranked .value", "#ranked-hint",
            "#served-model",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        screenshot(page, f"vqa-playground-{scheme}")


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    records = project.records()
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert len(train) == 8 and len(evals) == 2  # 40 steps, a line every 5, an evaluation every 20
    with open_page(browser, project.url + "/runs?run=first") as (page, _):
        assert_every_control_is_labelled(page)
        assert_dashboard_shows_run(
            page,
            project,
            ["loss", "lr", "samples_per_s", "grad_norm"],
            ["eval_loss", "exact_match", "accuracy_bar", "accuracy_count", "accuracy"],
        )
        screenshot(page, "vqa-dashboard")
        assert_readable_on_a_phone(page, "vqa-dashboard-phone")
