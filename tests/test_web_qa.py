"""The question-answering project's pages in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained briefly (a one-layer reader) and served for the
whole module. What the page shows (the answer or the abstention, the passage with the answer
marked, the sections retrieval found) is compared with what POST /predict answers for the same
question, never with hard-coded model output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.web_support import (
    ServedProject,
    assert_dashboard_shows_run,
    assert_every_control_is_labelled,
    assert_readable,
    assert_readable_on_a_phone,
    colours_of,
    http,
    open_page,
    open_playground,
    screenshot,
    served_project,
    shown_colours,
    tab_to,
)

pytestmark = pytest.mark.slow

# A one-layer reader, about 30 s on a CPU: it answers some validation questions and abstains on
# others (the first 60 steps of the default model abstain on every question), so the page is
# tested with both. The page is under test, not the model.
SMALL = [
    "n_layer=1", "n_embd=64", "n_head=2", "batch_size=16", "lr=3e-3", "warmup_steps=10",
    "eval_every=200", "log_every=20",
]  # fmt: skip
TRAIN = ["--max-steps", "600", *[part for setting in SMALL for part in ("--set", setting)]]
# A passage of one's own, with an emoji first (one character to Python, two UTF-16 units to
# JavaScript: every answer lies after it), markup, an ampersand and a line break; and questions on
# it, of which the test uses the first the model answers.
PASSAGE = (
    "💧 Keep the <b>heater</b> away from water & steam.\n"
    "Leave at least 30 cm of free space around the heater. Warranty period: 2 years. "
    "Connect the power adapter to the port marked DC IN 4. Its weight without accessories is 2.4 kg."
)
PASSAGE_QUESTIONS = [
    "How long is the warranty of the heater?",
    "How much does the heater weigh?",
    "Which port does the power adapter connect to?",
    "How much free space should be left around the heater?",
]
NO_SUCH_WORDS = "Xyzzy plugh qwfp?"  # not one word of it occurs in the manuals


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-qa"), "question-answering", TRAIN) as served:
        yield served


def predicted(project: ServedProject, question: str, context: str | None = None) -> dict:
    body = {"question": question} if context is None else {"question": question, "context": context}
    status, answer = http(f"{project.url}/predict", json.dumps(body).encode())
    assert status == 200, answer
    return answer


def examples(project: ServedProject) -> list[str]:
    status, answer = http(f"{project.url}/api/examples")
    assert status == 200 and answer["task"] == "question-answering", answer
    return answer["examples"]


def example_answered(project: ServedProject, answered: bool) -> tuple[int, str, dict]:
    """The first validation example the model answers (or abstains on), its index and the answer."""
    for index, question in enumerate(examples(project)):
        answer = predicted(project, question)
        if answer["abstained"] != answered:
            return index, question, answer
    raise AssertionError(f"the model {'abstains on' if answered else 'answers'} every example")


def ask(page: object, question: str, context: str = "") -> None:
    """Type `question` (and `context` in the passage box, opened for it), press Ask, and wait for
    the page to show the answer."""
    page.get_by_label("Your question").fill(question)
    if context and not page.eval_on_selector("#passage-details", "d => d.open"):
        page.click("#passage-details summary")
    if context or page.input_value("#context"):
        page.get_by_label("Passage to answer from").fill(context)
    page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")  # not the last answer's
    with page.expect_response("**/predict"):
        page.get_by_role("button", name="Ask", exact=True).click()
    wait_for_result(page)


def wait_for_result(page: object) -> None:
    page.wait_for_function(
        """() => { const text = document.getElementById('verdict').textContent;
                   return text !== '' && !text.startsWith('Looking'); }"""
    )


def shown(page: object) -> dict:
    """What the result card shows: the verdict, the answer, the margin line, the passage's title and
    text (without the words only a screen reader hears), each mark with the text before it, and
    the retrieved sections."""
    return page.evaluate(
        """() => {
             const byId = (id) => document.getElementById(id);
             const copy = byId('passage').cloneNode(true);
             copy.querySelectorAll('.visually-hidden').forEach(e => e.remove());
             const before = (mark) => {
               const range = document.createRange();
               range.setStart(copy, 0);
               range.setEndBefore(mark);
               return range.toString();
             };
             return {
               verdict: byId('verdict').textContent,
               answer: byId('answer') ? byId('answer').textContent : null,
               margin: byId('margin').hidden ? null : byId('margin').textContent,
               reading: !byId('reading').hidden,
               title: byId('passage-title').textContent,
               passage: copy.textContent,
               marks: [...copy.querySelectorAll('mark')].map(m => [m.textContent, before(m),
                       Number(m.dataset.start), Number(m.dataset.end)]),
               retrieval: !byId('retrieval').hidden,
               retrieved: [...document.querySelectorAll('#retrieved li')].map(li => [li.dataset.title,
                           li.querySelector('.retrieved-title').textContent,
                           li.querySelector('.retrieved-score').textContent]),
             };
           }"""
    )


def assert_page_shows(page: object, answer: dict, given: bool = False) -> None:
    """The result card shows `answer`, the server's answer to a question of the manuals (or of a
    `given` passage): the answer or the abstention, the margin, the passage read with the answer
    marked where its offsets put it, and the sections retrieval found."""
    card = shown(page)
    read = given or answer.get("retrieved") != []  # retrieval found no section: nothing was read
    if answer["abstained"]:
        assert card["answer"] is None and card["marks"] == []
        if given:
            assert card["verdict"] == "No answer in the passage."
        elif read:
            assert card["verdict"] == "No answer in the manual."
        else:
            assert card["verdict"] == "No answer in the manual: no section shares a word with the question."
    else:
        start, end = answer["start"], answer["end"]
        assert answer["answer"] and answer["context"][start:end] == answer["answer"]
        assert card["answer"] == answer["answer"] and card["verdict"] == f"Answer: {answer['answer']}"
        assert card["marks"] == [[answer["answer"], answer["context"][:start], start, end]]
    if answer["margin"] is not None:
        by = f"{abs(answer['margin']):.2f}."
        assert (
            card["margin"].endswith(by) and ("answer's score beats" in card["margin"]) != answer["abstained"]
        )
    else:
        assert card["margin"] is None
    if read:
        assert card["reading"] and card["passage"] == answer["context"]
        assert card["title"] == (answer["title"] or "your passage")
    else:
        assert not card["reading"] and card["passage"] == ""
    found = answer.get("retrieved", [])
    assert card["retrieved"] == [
        [r["title"], r["title"], f"BM25 {r['score']:.2f}{' · read' if i == 0 else ''}"]
        for i, r in enumerate(found)
    ]
    assert card["retrieval"] == bool(found)
    if found and "context" in answer:
        assert found[0]["title"] == answer["title"]  # the section read is the first found
    assert not page.is_visible("#error")


def test_a_validation_question_is_answered_from_one_click(project: ServedProject, browser: object) -> None:
    index, question, expected = example_answered(project, answered=True)
    assert expected["title"] and 1 <= len(expected["retrieved"]) <= 3
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Ask the product manuals"
        assert page.inner_text("#result-heading") == "Answer"
        assert page.inner_text("#verdict") == "Nothing asked yet."
        assert not page.is_visible("#reading") and not page.is_visible("#retrieval")
        assert not page.is_visible("#context")  # the passage box is optional: folded away
        assert_every_control_is_labelled(page)
        page.wait_for_selector("#examples button")
        button = page.locator("#examples button").nth(index)
        assert button.get_attribute("title") == question and button.inner_text() == question
        with page.expect_response("**/predict") as response:
            button.click()
        assert json.loads(response.value.request.post_data) == {"question": question}
        wait_for_result(page)
        assert page.input_value("#question") == question and page.input_value("#context") == ""
        assert_page_shows(page, expected)
        live = page.eval_on_selector("#verdict", "v => v.closest('[aria-live]')?.getAttribute('aria-live')")
        assert live == "polite"  # the answer is read out when it comes
        mark_box = page.locator("#passage mark").bounding_box()
        passage_box = page.locator("#passage").bounding_box()
        assert (
            mark_box["height"] > 0
            and passage_box["y"] <= mark_box["y"] <= passage_box["y"] + passage_box["height"]
        )
        screenshot(page, "qa-playground")
        assert_readable_on_a_phone(page, "qa-playground-phone")


def test_an_abstention_says_so_and_shows_the_section_read(project: ServedProject, browser: object) -> None:
    _, answerable, _ = example_answered(project, answered=True)
    _, question, expected = example_answered(project, answered=False)
    assert expected["answer"] == "" and "start" not in expected and expected["context"]
    with open_playground(browser, project.url) as page:
        ask(page, answerable)  # an answer first: the abstention must replace it
        assert page.locator("#passage mark").count() == 1
        ask(page, question)
        assert_page_shows(page, expected)
        assert page.locator("#result mark, #answer").count() == 0
        screenshot(page, "qa-playground-abstained")


def test_a_question_without_a_word_of_the_manuals_finds_no_section(
    project: ServedProject, browser: object
) -> None:
    expected = predicted(project, NO_SUCH_WORDS)
    assert expected["abstained"] and expected["retrieved"] == [] and expected["context"] == ""
    with open_playground(browser, project.url) as page:
        ask(page, NO_SUCH_WORDS)
        assert_page_shows(page, expected)
        assert not page.is_visible("#reading") and not page.is_visible("#retrieval")
        assert not page.is_visible("#margin")


def test_a_given_passage_is_answered_from_it(project: ServedProject, browser: object) -> None:
    passage, question = "The unit weighs 2.4 kg.", "How much does the unit weigh?"
    expected = predicted(project, question, passage)
    assert expected["context"] == passage and expected["title"] == "" and "retrieved" not in expected
    with open_playground(browser, project.url) as page:
        with page.expect_request("**/predict") as request:
            ask(page, question, passage)
        assert json.loads(request.value.post_data) == {"question": question, "context": passage}
        assert_page_shows(page, expected, given=True)
        assert page.inner_text("#passage-title") == "your passage"
        assert not page.is_visible("#retrieval")
        ask(page, question, "")  # emptied, the passage box leaves the question to retrieval
        assert_page_shows(page, predicted(project, question))
        assert page.is_visible("#retrieval")


def test_offsets_count_characters_as_the_server_does_and_markup_stays_text(
    project: ServedProject, browser: object
) -> None:
    """The emoji before the answer must not shift its mark, and the passage's markup is shown as
    text: the page shows the passage character for character."""
    answers = [(q, predicted(project, q, PASSAGE)) for q in PASSAGE_QUESTIONS]
    answered = [(q, a) for q, a in answers if not a["abstained"]]
    assert answered, f"the model abstains on each of {PASSAGE_QUESTIONS}"
    question, expected = answered[0]
    assert expected["start"] > PASSAGE.index("💧")
    with open_playground(browser, project.url) as page:
        title = page.title()
        ask(page, question, PASSAGE)
        assert_page_shows(page, expected, given=True)
        assert page.locator("#result b").count() == 0
        assert "<b>heater</b>" in page.inner_text("#passage")
        assert page.title() == title
        screenshot(page, "qa-playground-own-passage")


def test_ctrl_enter_asks_from_the_question_and_from_the_passage(
    project: ServedProject, browser: object
) -> None:
    _, question, expected = example_answered(project, answered=True)
    with open_playground(browser, project.url) as page:
        tab_to(page, "question")
        page.keyboard.type(question)
        with page.expect_response("**/predict"):
            page.keyboard.press("Control+Enter")
        wait_for_result(page)
        assert_page_shows(page, expected)
        tab_to(page, "passage-summary")  # the folded passage box opens from the keyboard
        page.keyboard.press("Enter")
        tab_to(page, "context")
        page.keyboard.type(PASSAGE)
        page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")
        with page.expect_request("**/predict") as request:
            page.keyboard.press("Control+Enter")
        wait_for_result(page)
        assert json.loads(request.value.post_data) == {"question": question, "context": PASSAGE}
        assert_page_shows(page, predicted(project, question, PASSAGE), given=True)


def test_an_empty_question_shows_the_servers_reason_in_one_line(
    project: ServedProject, browser: object
) -> None:
    status, refused = http(f"{project.url}/predict", b'{"question": ""}')
    assert status == 422 and refused["detail"].startswith("question") and "\n" not in refused["detail"]
    _, question, _ = example_answered(project, answered=True)
    with open_playground(browser, project.url) as page:
        ask(page, question)  # an answer first: the error must replace it
        page.get_by_label("Your question").fill("  \n ")
        with page.expect_response("**/predict") as response:
            page.get_by_role("button", name="Ask", exact=True).click()
        assert response.value.status == 422
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == refused["detail"]
        lines = page.eval_on_selector(
            "#error",
            "e => { const text = document.createRange(); text.selectNodeContents(e);"
            " return text.getClientRects().length; }",
        )
        assert lines == 1  # the reason fits on one line of the alert box
        assert page.get_attribute("#error", "role") == "alert"
        assert page.inner_text("#verdict") == "Nothing answered."
        assert not page.is_visible("#reading") and not page.is_visible("#retrieval")
        assert page.get_attribute("#question", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "question"  # back to the box to type in
        screenshot(page, "qa-playground-empty-question")
        ask(page, question)  # the page still works, and the marks of the error are gone
        assert not page.is_visible("#error") and page.get_attribute("#question", "aria-invalid") is None


def test_a_passage_over_the_limit_opens_the_passage_box_with_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        page.fill("#question", "How heavy is it?")
        page.click("#passage-details summary")
        page.fill("#context", "x" * 100_001)
        page.click("#passage-details summary")  # folded again: the error unfolds it
        with page.expect_response("**/predict") as response:
            page.get_by_role("button", name="Ask", exact=True).click()
        assert response.value.status == 422
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error").startswith("context:") and "100000 characters" in page.inner_text(
            "#error"
        )
        assert page.is_visible("#context") and page.get_attribute("#context", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "context"


def test_server_strings_are_shown_as_text(project: ServedProject, browser: object) -> None:
    """A project served on its own manuals returns its own titles and passages: whatever they hold
    is written as text, and the mark follows the offsets in characters, after any emoji."""
    context = '🔥 <img src=x onerror="document.title=1"> The <i>warranty</i> lasts 2 years.'
    start = context.index("2 years")
    answer = {
        "question": "How long?",
        "answer": "2 years",
        "abstained": False,
        "margin": 1.5,
        "title": "<i>Kettle</i>: Warranty",
        "context": context,
        "start": start,
        "end": start + 7,
        "retrieved": [{"title": "<i>Kettle</i>: Warranty", "score": 9.87654}, {"title": "", "score": 1.0}],
    }
    with open_playground(browser, project.url) as page:
        title = page.title()
        page.route("**/predict", lambda route: route.fulfill(json=answer))
        ask(page, "How long?")
        card = shown(page)
        assert card["marks"] == [["2 years", context[:start], start, start + 7]]
        assert card["passage"] == context and card["title"] == "<i>Kettle</i>: Warranty"
        assert card["retrieved"] == [
            ["<i>Kettle</i>: Warranty", "<i>Kettle</i>: Warranty", "BM25 9.88 · read"],
            ["", "Untitled passage", "BM25 1.00"],
        ]
        assert page.locator("#result img, #result i").count() == 0
        assert page.title() == title
        page.unroute("**/predict")
        page.route(
            "**/predict", lambda route: route.fulfill(status=422, json={"detail": "<i>question</i>: no"})
        )
        page.get_by_role("button", name="Ask", exact=True).click()
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == "<i>question</i>: no" and page.locator("#error i").count() == 0


def test_a_long_passage_scrolls_to_the_answer(project: ServedProject, browser: object) -> None:
    """A passage longer than its box scrolls in it, and opens at the answer, wherever it lies."""
    lines = [f"Line {n}: nothing to see here." for n in range(200)]
    lines[150] = "Line 150: the warranty lasts 2 years."
    context = "\n".join(lines)
    start = context.index("2 years")
    answer = {"question": "How long?", "answer": "2 years", "abstained": False, "margin": 0.5}
    answer |= {"title": "", "context": context, "start": start, "end": start + 7}
    with open_playground(browser, project.url) as page:
        page.route("**/predict", lambda route: route.fulfill(json=answer))
        ask(page, "How long?", context)
        assert_page_shows(page, answer, given=True)
        box = page.locator("#passage").bounding_box()
        mark = page.locator("#passage mark").bounding_box()
        assert page.eval_on_selector(
            "#passage", "p => p.scrollHeight > 2 * p.clientHeight && p.scrollTop > 0"
        )
        assert box["y"] <= mark["y"] and mark["y"] + mark["height"] <= box["y"] + box["height"]
        assert box["height"] < 0.5 * page.viewport_size["height"]
        screenshot(page, "qa-playground-long-passage")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (the answer, the marked answer
    in the passage, the abstention, the margin, the titles and scores, the error line) and what is
    behind it."""
    _, answerable, _ = example_answered(project, answered=True)
    _, unanswerable, _ = example_answered(project, answered=False)
    with open_playground(browser, project.url, scheme) as page:
        page.click("#passage-details summary")
        ask(page, "")
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        ask(page, unanswerable)
        checked += shown_colours(page, "#verdict")
        ask(page, answerable)
        page.wait_for_selector("#examples button")
        checked += colours_of(page, [
            "h1", ".lead", "label", "summary", ".hint", "#examples button", "#answer", "#margin",
            ".passage-heading .muted", "#passage-title", "#passage", "#passage mark", ".retrieved-title",
            ".retrieved-score", "#served-model",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        screenshot(page, f"qa-playground-{scheme}")


def test_malformed_requests_get_a_422_and_the_server_lives_on(project: ServedProject) -> None:
    for body, reason in [
        (b"{not json", "JSON"),
        (b'{"question": ""}', "question"),
        (b'{"context": "The unit weighs 2.4 kg."}', "question"),
        (b'{"question": "How heavy?", "context": ""}', "context"),
        (json.dumps({"question": "x" * 2001}).encode(), "question"),
    ]:
        status, answer = http(f"{project.url}/predict", body)
        assert status == 422 and reason in answer["detail"] and "\n" not in answer["detail"], answer
    assert len(examples(project)) == 6
    assert http(f"{project.url}/health")[0] == 200


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/runs") as (page, _):
        assert_dashboard_shows_run(
            page,
            project,
            ["loss", "lr", "samples_per_s", "grad_norm"],
            ["eval_loss", "exact_match", "f1", "abstentions"],
        )
        screenshot(page, "qa-dashboard")
