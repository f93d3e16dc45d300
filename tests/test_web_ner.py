"""The token-classification (named entity recognition) project's pages in headless Chromium,
against its real server.

One project is rendered with `ccpt new`, trained for a few steps and served for the whole module.
What the page marks is compared with what POST /predict answers for the same note, never with
hard-coded model output.
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
    contrast,
    hex_to_rgb,
    http,
    open_page,
    open_playground,
    over,
    rgba,
    screenshot,
    served_project,
    tab_to,
)

pytestmark = pytest.mark.slow

# The project's default model, trained for about ten seconds on a CPU. After 60 steps it tagged
# NOTE's condition at 0.75 on one machine and missed it on another (CI, 2026-11-29); after 150
# steps every entity in NOTE scores above 0.97, so a different CPU's rounding cannot drop one.
TRAIN = ["--max-steps", "150", "--set", "eval_every=50", "--set", "log_every=10"]
NOTE = "Started lisinopril 10 mg daily for hypertension."
# Notes without a drug, a dose or a condition: the test uses the first the model agrees on.
PLAIN_NOTES = ["Vital signs stable.", "No acute distress.", "Patient seen in clinic today."]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-ner"), "named-entity-recognition", TRAIN) as served:
        yield served


def predicted(project: ServedProject, text: str) -> dict:
    status, answer = http(f"{project.url}/predict", json.dumps({"text": text}).encode())
    assert status == 200, answer
    return answer


def shown_marks(page: object) -> list[list[object]]:
    """[type, text, start, end] of each entity marked in the note, and its visible label."""
    return page.eval_on_selector_all(
        "#tagged mark",
        """marks => marks.map(m => [m.dataset.type, m.querySelector('.entity-text').textContent,
                                    Number(m.dataset.start), Number(m.dataset.end),
                                    m.querySelector('.entity-type').textContent])""",
    )


def shown_note(page: object) -> str:
    """The marked note's text without the type labels: the submitted note, character for character."""
    return page.eval_on_selector(
        "#tagged",
        """note => { const copy = note.cloneNode(true);
                     copy.querySelectorAll('.entity-type, .visually-hidden').forEach(e => e.remove());
                     return copy.textContent; }""",
    )


def assert_page_shows(page: object, note: str, answer: dict) -> None:
    """The result card shows `answer`, the server's entities in `note`: marks, legend, table."""
    entities = answer["entities"]
    assert shown_marks(page) == [[e["type"], e["text"], e["start"], e["end"], e["type"]] for e in entities]
    assert shown_note(page) == note
    rows = page.eval_on_selector_all(
        "#entities tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [row[:2] for row in rows] == [[e["type"], e["text"]] for e in entities]
    for (*_, score), entity in zip(rows, entities, strict=True):  # "99.3%", rounded to 0.1 point
        assert score.endswith("%") and abs(float(score[:-1]) - entity["score"] * 100) <= 0.05 + 1e-9
    counts: dict[str, int] = {}
    for entity in entities:
        counts[entity["type"]] = counts.get(entity["type"], 0) + 1
    legend = page.eval_on_selector_all("#legend li", "items => items.map(i => [i.dataset.type, i.innerText])")
    assert legend == [[kind, f"{kind} \u00d7 {count}"] for kind, count in counts.items()]
    if entities:
        count = len(entities)
        assert page.inner_text("#verdict") == f"{count} {'entity' if count == 1 else 'entities'} found."
        assert page.is_visible("#legend") and page.is_visible("#entities")
    else:
        assert page.inner_text("#verdict") == "No entities found."
        assert not page.is_visible("#legend") and not page.is_visible("#entities")
    assert page.is_visible("#tagged")


def tag(page: object, note: str) -> None:
    """Type `note`, press Tag, and wait for the page to show the answer."""
    page.get_by_label("Note to tag").fill(note)
    page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")  # not the last answer's
    with page.expect_response("**/predict"):
        page.get_by_role("button", name="Tag", exact=True).click()
    wait_for_result(page)


def wait_for_result(page: object) -> None:
    # A function, not a bare expression: Playwright re-evaluates an expression with eval() when its
    # first check fails, which the page's Content-Security-Policy (script-src 'self') refuses.
    page.wait_for_function("() => document.getElementById('verdict').textContent.endsWith('found.')")


def test_a_typed_note_gets_the_servers_entities_marked(project: ServedProject, browser: object) -> None:
    expected = predicted(project, NOTE)
    assert {e["type"] for e in expected["entities"]} >= {"DRUG", "DOSE", "CONDITION"}, expected
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Tag entities in a note"
        assert_every_control_is_labelled(page)
        tag(page, NOTE)
        assert_page_shows(page, NOTE, expected)
        classes = page.eval_on_selector_all("#tagged mark", "marks => marks.map(m => m.className)")
        assert classes == [f"entity ent-{e['type'].lower()}" for e in expected["entities"]]
        page.wait_for_selector("#examples button")
        screenshot(page, "ner-playground")
        assert_readable_on_a_phone(page, "ner-playground-phone")


def test_offsets_count_characters_as_the_server_does(project: ServedProject, browser: object) -> None:
    """An emoji is one character to Python but two UTF-16 units to JavaScript: the marks after it
    must not shift, and markup in the note is shown as text."""
    note = "Note 💊: started <b>aspirin</b> 81 mg\nfor angina & gout."
    expected = predicted(project, note)
    assert expected["entities"], expected
    with open_playground(browser, project.url) as page:
        tag(page, note)
        assert_page_shows(page, note, expected)
        assert page.locator("#result b").count() == 0


def test_ctrl_enter_in_the_note_tags_it(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        tab_to(page, "text")
        page.keyboard.type(NOTE)
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#tagged mark")
        assert not page.is_visible("#error")


def test_a_validation_note_is_tagged_from_one_click(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        page.wait_for_selector("#examples button")
        example = page.locator("#examples button").first
        note = example.get_attribute("title")
        with page.expect_response("**/predict"):
            example.click()
        wait_for_result(page)
        assert page.input_value("#text") == note and note
        assert_page_shows(page, note, predicted(project, note))


def test_a_note_without_entities_says_so(project: ServedProject, browser: object) -> None:
    plain = [note for note in PLAIN_NOTES if not predicted(project, note)["entities"]]
    assert plain, f"the model found entities in each of {PLAIN_NOTES}"
    with open_playground(browser, project.url) as page:
        tag(page, NOTE)  # a result first: the next one must replace it
        tag(page, plain[0])
        assert_page_shows(page, plain[0], {"entities": []})
        assert page.inner_text("#tagged") == plain[0]
        screenshot(page, "ner-playground-no-entities")


def test_an_empty_note_is_refused_on_the_page_without_a_request(
    project: ServedProject, browser: object
) -> None:
    with open_playground(browser, project.url) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.get_by_label("Note to tag").fill("  \n ")
        page.get_by_role("button", name="Tag", exact=True).click()
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == "Type or paste a note to tag first."
        assert page.evaluate("document.activeElement.id") == "text"  # back to the box to type in
        assert page.get_attribute("#text", "aria-invalid") == "true"
        assert not [url for url in requests if url.endswith("/predict")]
        tag(page, NOTE)  # the page still works, and the mark on the box is gone
        assert not page.is_visible("#error")
        assert page.get_attribute("#text", "aria-invalid") is None


def test_a_note_over_the_limit_shows_the_servers_reason(project: ServedProject, browser: object) -> None:
    with open_page(browser, project.url + "/") as (page, _):
        page.fill("#text", "x" * 100_001)
        with page.expect_response("**/predict") as answer:
            page.get_by_role("button", name="Tag", exact=True).click()
        assert answer.value.status == 422
        page.wait_for_selector("#error:not([hidden])")
        assert "text" in page.inner_text("#error") and "100000 characters" in page.inner_text("#error")
        assert page.locator("#tagged mark").count() == 0 and not page.is_visible("#tagged")
        assert page.get_attribute("#text", "aria-invalid") == "true"
        screenshot(page, "ner-playground-bad-input")


def test_other_types_get_a_neutral_colour_and_stay_text(project: ServedProject, browser: object) -> None:
    """A project trained on its own data has its own types (PER, ORG ...): the page shows any type
    and any text the server returns as text, in a neutral colour where the stylesheet has none."""
    note = 'Ann <img src=x onerror="document.title=1"> met Bob.'
    start, end, bob = note.index("<img"), note.index(">") + 1, note.index("Bob")
    answer = {
        "entities": [
            {"type": "PER", "text": "Ann", "start": 0, "end": 3, "score": 0.9},
            {"type": "<i>X</i>", "text": note[start:end], "start": start, "end": end, "score": 0.5},
            {"type": "DRUG", "text": "Bob", "start": bob, "end": bob + 3, "score": 0.75},
        ],
        "words": [],
    }
    with open_playground(browser, project.url) as page:
        page.route("**/predict", lambda route: route.fulfill(json=answer))
        tag(page, note)
        assert_page_shows(page, note, answer)
        assert page.locator("#result img, #result i").count() == 0
        classes = page.eval_on_selector_all("#tagged mark", "marks => marks.map(m => m.className)")
        assert classes == ["entity ent-per", "entity ent-i-x-i", "entity ent-drug"]
        colours = page.eval_on_selector_all(
            "#tagged mark", "marks => marks.map(m => getComputedStyle(m).borderBottomColor)"
        )
        muted = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--muted').trim()")
        assert colours[0] == colours[1] == hex_to_rgb(muted) != colours[2]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_marked_words_and_labels_are_readable(project: ServedProject, browser: object, scheme: str) -> None:
    """At least 4.5:1 (WCAG AA) between each mark's text, and each type label's, and what is behind it."""
    with open_playground(browser, project.url) as page:
        page.emulate_media(color_scheme=scheme)
        tag(page, NOTE)
        layers = page.eval_on_selector_all(
            "#tagged mark",
            """marks => marks.map(m => {
                 const [note, mark, label] = [m.parentElement, m, m.querySelector('.entity-type')]
                   .map(e => getComputedStyle(e));
                 return [note.backgroundColor, mark.backgroundColor, mark.color,
                         label.backgroundColor, label.color];
               })""",
        )
        assert layers
        for note_background, mark_background, mark_text, label_background, label_text in layers:
            behind_mark = over(rgba(mark_background), rgba(note_background))
            assert contrast(rgba(mark_text), behind_mark) >= 4.5
            assert contrast(rgba(label_text), over(rgba(label_background), behind_mark)) >= 4.5
        screenshot(page, f"ner-playground-{scheme}")


def test_malformed_requests_get_a_422_and_the_server_lives_on(project: ServedProject) -> None:
    for body, reason in [(b"{not json", "JSON"), (b'{"text": ""}', "text"), (b'{"words": "hi"}', "text")]:
        status, answer = http(f"{project.url}/predict", body)
        assert status == 422 and reason in answer["detail"]
    assert http(f"{project.url}/health")[0] == 200


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/runs") as (page, _):
        assert_dashboard_shows_run(
            page,
            project,
            ["loss", "lr", "samples_per_s", "grad_norm"],
            ["eval_loss", "precision", "recall", "f1"],
        )
        screenshot(page, "ner-dashboard")
