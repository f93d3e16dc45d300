"""The masked-lm (domain adaptation) project's playground and dashboard in headless Chromium,
against its real server.

One project is rendered with `ccpt new --spec domain-adaptation`, trained for a few steps and
served for the whole module. What the page shows (the text with each [MASK] filled in, each
[MASK]'s ranked tokens, the probe's clause kinds) is compared with what POST /predict answers for
the same text, never with hard-coded model output.
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
    to_fixed,
)

pytestmark = pytest.mark.slow

MASK = "[MASK]"
# Small settings: an encoder of one small layer adapted from random weights (no original
# pre-training to wait for), about ten seconds on a CPU. The page is under test, not the model.
TINY = [
    "batch_size=16", "max_length=64", "vocab_size=1000", "n_embd=32", "n_layer=1", "original_steps=0",
    "eval_batches=4", "warmup_steps=5", "lr=1e-2", "eval_every=20", "log_every=5", "device=cpu",
]  # fmt: skip
TRAIN = ["--max-steps", "40", *[part for setting in TINY for part in ("--set", setting)]]
TEXT = "The courts of [MASK] shall have exclusive jurisdiction over any dispute arising out of this [MASK]."
PLAIN = "Either party may terminate this Agreement upon thirty days' written notice."


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(
        tmp_path_factory.mktemp("web-mlm"), "masked-lm", TRAIN, spec="domain-adaptation"
    ) as served:
        yield served


def predicted(project: ServedProject, text: str, top_k: int = 5) -> dict:
    status, answer = http(f"{project.url}/predict", json.dumps({"text": text, "top_k": top_k}).encode())
    assert status == 200, answer
    return answer


def examples(project: ServedProject) -> list[str]:
    status, body = http(f"{project.url}/api/examples")
    assert status == 200
    return body["examples"]


def fill_in(page: object, text: str) -> object:
    """Type `text`, press Fill in, wait for the page to show the answer, and return the response."""
    page.get_by_label("Text to fill in").fill(text)
    page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")  # not the last answer's
    with page.expect_response("**/predict") as answer:
        page.get_by_role("button", name="Fill in", exact=True).click()
    wait_for_result(page)
    return answer.value


def wait_for_result(page: object) -> None:
    # A function, not a bare expression: Playwright re-evaluates an expression with eval() when its
    # first check fails, which the page's Content-Security-Policy (script-src 'self') refuses.
    page.wait_for_function(
        "() => !['', 'Filling in\u2026'].includes(document.getElementById('verdict').textContent)"
    )


def written_filled(text: str, masks: list[dict]) -> str:
    """`text` as written, each [MASK] the server filled replaced by its likeliest token, in order;
    a [MASK] it did not fill (past the tokens the model reads) stays."""
    first, *rest = text.split(MASK)
    pieces = [first]
    for index, after in enumerate(rest):
        pieces += [masks[index]["top"][0]["token"] if index < len(masks) else MASK, after]
    return "".join(pieces)


def shown_text(page: object) -> str:
    """The filled-in text as seen: without the [MASK] numbers and the words only read aloud."""
    return page.eval_on_selector(
        "#filled",
        """box => { const copy = box.cloneNode(true);
                    copy.querySelectorAll('.mask-number, .visually-hidden').forEach(e => e.remove());
                    return copy.textContent; }""",
    )


def shown_marks(page: object) -> list[list[str]]:
    """[number, token, the number shown beside it] of each token marked in the filled-in text."""
    return page.eval_on_selector_all(
        "#filled mark",
        """marks => marks.map(m => [m.dataset.mask, m.querySelector('.filled-word').textContent,
                                    m.querySelector('.mask-number').textContent])""",
    )


def shown_bars(page: object, selector: str) -> list[list[object]]:
    return page.eval_on_selector_all(
        f"{selector} li",
        """items => items.map(li => [li.dataset.label, Number(li.dataset.probability),
                                     li.querySelector('.value').textContent])""",
    )


def bars_of(ranked: list[dict], key: str) -> list[list[object]]:
    """The bars a ranked list [{key, probability}] must be drawn as: the percentage as the page rounds it."""
    return [[r[key], r["probability"], f"{to_fixed(r['probability'] * 100, 1)}%"] for r in ranked]


def shown_candidates(page: object) -> list[list[object]]:
    """[the heading, its bars] of each [MASK]'s ranked tokens."""
    return page.eval_on_selector_all(
        "#mask-lists .mask-candidates",
        """groups => groups.map(g => [g.dataset.mask, g.querySelector('h4').textContent,
             [...g.querySelectorAll('li')].map(li => [li.dataset.label, Number(li.dataset.probability),
                                                     li.querySelector('.value').textContent])])""",
    )


def assert_page_shows(page: object, text: str, answer: dict) -> None:
    """The result card shows `answer`, the server's reply for `text`: the verdict, the text filled
    in with each filled token marked, each [MASK]'s tokens, the note on [MASK]s not filled, and the
    clause kind (or that there is none)."""
    masks, left = answer["masks"], answer["unfilled"]
    if masks:
        count = len(masks)
        assert page.inner_text("#verdict") == f"Filled in {count} {MASK}{'' if count == 1 else 's'}."
    elif left:
        assert page.inner_text("#verdict").startswith(f"Nothing filled in: every {MASK} is past the start")
    else:
        assert page.inner_text("#verdict") == (
            f"No {MASK} in the text, so there is nothing to fill in: write {MASK} where a word goes."
        )
    assert page.is_visible("#filling") and page.is_visible("#filled")
    assert shown_text(page) == written_filled(text, masks)
    assert shown_marks(page) == [[str(i + 1), m["top"][0]["token"], str(i + 1)] for i, m in enumerate(masks)]
    assert page.locator("#filled .unfilled-mask").count() == left
    assert shown_candidates(page) == [
        [str(i + 1), f"{MASK} {i + 1}", bars_of(mask["top"], "token")] for i, mask in enumerate(masks)
    ]
    assert page.is_visible("#candidates") == bool(masks)
    if left:
        assert page.inner_text("#unfilled").startswith(
            f"{left} {MASK}{'' if left == 1 else 's'} past the tokens"
        )
    else:
        assert not page.is_visible("#unfilled")
    if "top" in answer:
        top = answer["top"][0]
        percent = f"{to_fixed(top['probability'] * 100, 1)}%"
        assert page.inner_text("#clause-kind") == f"Clause kind: {answer['label']} ({percent})"
        assert shown_bars(page, "#bars") == bars_of(answer["top"], "label")
        assert page.is_visible("#probe") and page.is_visible("#bars") and not page.is_visible("#no-probe")
    else:
        assert not page.is_visible("#probe") and not page.is_visible("#bars")
        assert page.locator("#bars li").count() == 0
        assert page.is_visible("#no-probe")
    assert not page.is_visible("#error")


def test_a_typed_clause_gets_each_masks_tokens_and_its_kind(project: ServedProject, browser: object) -> None:
    expected = predicted(project, TEXT)
    assert len(expected["masks"]) == 2 and expected["unfilled"] == 0 and expected["label"], expected
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Fill in the blanks of a contract clause"
        assert page.inner_text("#result-heading") == "Filled in"
        assert page.inner_text("#verdict") == "Nothing filled in yet."
        assert not page.is_visible("#filling") and not page.is_visible("#bars")
        assert_every_control_is_labelled(page)
        answer = fill_in(page, TEXT)
        assert json.loads(answer.request.post_data) == {"text": TEXT, "top_k": 5}
        assert answer.json() == expected
        assert_page_shows(page, TEXT, expected)
        assert all(len(mask["top"]) == 5 for mask in expected["masks"]) and len(expected["top"]) == 5
        page.wait_for_selector("#examples button")
        screenshot(page, "mlm-playground")
        assert_readable_on_a_phone(page, "mlm-playground-phone")


def test_a_validation_clause_is_filled_from_one_click(project: ServedProject, browser: object) -> None:
    """The examples are validation clauses with one word masked; one click fills it in. (The test
    clicks one whose [MASK] the model reads: a [MASK] past max_length is left, as the next test shows.)"""
    offered = examples(project)
    assert len(offered) == 6 and all(example.count(MASK) == 1 for example in offered)
    answers = [predicted(project, example) for example in offered]
    index = next(i for i, answer in enumerate(answers) if answer["masks"])
    with open_playground(browser, project.url) as page:
        page.wait_for_selector("#examples button")
        buttons = page.locator("#examples button")
        assert [buttons.nth(i).get_attribute("title") for i in range(buttons.count())] == offered
        page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")
        with page.expect_response("**/predict") as answer:
            buttons.nth(index).click()
        wait_for_result(page)
        assert json.loads(answer.value.request.post_data) == {"text": offered[index], "top_k": 5}
        assert page.input_value("#text") == offered[index]
        assert_page_shows(page, offered[index], answers[index])


def test_masks_past_the_tokens_the_model_reads_stay_as_written(
    project: ServedProject, browser: object
) -> None:
    """The model reads the first max_length tokens: a [MASK] after them is not filled, stays [MASK]
    in the text shown, and a note says so."""
    text = f"The {MASK} shall pay. " + "The Vendor shall deliver the goods. " * 20 + f"This {MASK} ends."
    expected = predicted(project, text)
    assert len(expected["masks"]) == 1 and expected["unfilled"] == 1, expected
    with open_playground(browser, project.url) as page:
        fill_in(page, text)
        assert_page_shows(page, text, expected)
        assert page.inner_text("#filled .unfilled-mask") == MASK
        assert page.inner_text("#unfilled") == (
            f"1 {MASK} past the tokens the model reads was not filled in: put {MASK} nearer the start."
        )
        only_late = "The Vendor shall deliver the goods. " * 20 + f"This {MASK} ends."
        expected = predicted(project, only_late)
        assert expected["masks"] == [] and expected["unfilled"] == 1
        fill_in(page, only_late)
        assert_page_shows(page, only_late, expected)
        assert not page.is_visible("#candidates") and page.is_visible("#probe")
        screenshot(page, "mlm-playground-unfilled")


def test_a_text_without_a_mask_says_so_and_still_names_the_clause_kind(
    project: ServedProject, browser: object
) -> None:
    expected = predicted(project, PLAIN)
    assert expected["masks"] == [] and expected["unfilled"] == 0 and expected["label"]
    with open_playground(browser, project.url) as page:
        fill_in(page, TEXT)  # a result first: the next one must replace it
        fill_in(page, PLAIN)
        assert_page_shows(page, PLAIN, expected)
        assert page.inner_text("#filled") == PLAIN
        assert page.locator("#mask-lists *").count() == 0 and not page.is_visible("#candidates")
        screenshot(page, "mlm-playground-no-mask")


def test_a_text_of_spaces_shows_the_servers_reason_in_one_line(
    project: ServedProject, browser: object
) -> None:
    status, refused = http(f"{project.url}/predict", json.dumps({"text": "  \n "}).encode())
    assert (
        status == 422 and refused["detail"].startswith("the text is empty;") and "\n" not in refused["detail"]
    )
    with open_playground(browser, project.url) as page:
        fill_in(page, TEXT)  # a result first: the error must replace it
        page.get_by_label("Text to fill in").fill("  \n ")
        with page.expect_response("**/predict") as response:
            page.get_by_role("button", name="Fill in", exact=True).click()
        assert response.value.status == 422 and response.value.json() == refused
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == refused["detail"]
        assert page.get_attribute("#error", "role") == "alert"
        assert page.inner_text("#verdict") == "Nothing filled in."
        assert not page.is_visible("#filling") and not page.is_visible("#bars")
        assert page.locator("#filled mark, #mask-lists li, #bars li").count() == 0
        assert page.get_attribute("#text", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "text"  # back to the box to type in
        screenshot(page, "mlm-playground-spaces")
        fill_in(page, TEXT)  # the page still works, and the marks of the error are gone
        assert_page_shows(page, TEXT, predicted(project, TEXT))
        assert page.get_attribute("#text", "aria-invalid") is None


def test_the_number_of_candidates_sets_how_many_tokens_and_kinds_show(
    project: ServedProject, browser: object
) -> None:
    """A new number fills the shown text in again with that many tokens per [MASK] and clause kinds;
    one the server refuses names the field, and the next good one fills in again."""
    with open_playground(browser, project.url) as page:
        fill_in(page, TEXT)
        assert [len(group[2]) for group in shown_candidates(page)] == [5, 5]
        two = predicted(project, TEXT, top_k=2)
        with page.expect_response("**/predict") as answer:
            page.fill("#top-k", "2")
            page.press("#top-k", "Tab")  # the change is made when the field is left
        assert json.loads(answer.value.request.post_data) == {"text": TEXT, "top_k": 2}
        page.wait_for_function("() => document.querySelectorAll('#bars li').length === 2")
        assert_page_shows(page, TEXT, two)
        assert [len(group[2]) for group in shown_candidates(page)] == [2, 2]
        status, refused = http(f"{project.url}/predict", json.dumps({"text": TEXT, "top_k": 0}).encode())
        assert status == 422 and refused["detail"].startswith("top_k:")
        with page.expect_response("**/predict") as answer:
            page.fill("#top-k", "0")
            page.press("#top-k", "Tab")
        assert answer.value.status == 422
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == refused["detail"]
        assert page.get_attribute("#top-k", "aria-invalid") == "true"
        assert page.get_attribute("#text", "aria-invalid") is None
        three = predicted(project, TEXT, top_k=3)
        with page.expect_response("**/predict"):
            page.fill("#top-k", "3")
            page.press("#top-k", "Tab")
        page.wait_for_function("() => document.querySelectorAll('#bars li').length === 3")
        assert_page_shows(page, TEXT, three)
        assert page.get_attribute("#top-k", "aria-invalid") is None


def test_insert_mask_replaces_the_selected_word_and_ctrl_enter_fills_in(
    project: ServedProject, browser: object
) -> None:
    clause = "The courts of Dublin shall have exclusive jurisdiction."
    with open_playground(browser, project.url) as page:
        tab_to(page, "text")
        page.keyboard.type(clause)
        start = clause.index("Dublin")
        page.eval_on_selector("#text", f"t => t.setSelectionRange({start}, {start + len('Dublin')})")
        page.get_by_role("button", name="Insert [MASK]").click()
        masked = clause.replace("Dublin", MASK)
        assert page.input_value("#text") == masked
        assert page.evaluate("document.activeElement.id") == "text"  # back to typing, after the [MASK]
        assert page.eval_on_selector("#text", "t => [t.selectionStart, t.selectionEnd]") == [start + 6] * 2
        page.keyboard.press("Control+End")
        page.get_by_role("button", name="Insert [MASK]").click()  # nothing selected: at the cursor
        assert page.input_value("#text") == masked + MASK
        page.keyboard.press("Backspace")
        page.keyboard.press("Backspace")  # "[MAS" left at the end: it is no mask
        expected = predicted(project, masked + "[MAS")
        page.focus("#text")
        page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")
        with page.expect_response("**/predict"):
            page.keyboard.press("Control+Enter")
        wait_for_result(page)
        assert_page_shows(page, masked + "[MAS", expected)
        assert len(expected["masks"]) == 1


def test_model_output_stays_text_and_a_run_without_labels_shows_no_probe(
    project: ServedProject, browser: object
) -> None:
    """Tokens and labels of a model trained on other data are shown as text: markup in them becomes
    no element. A reply without `top` (a run with no clause labels) shows no probe: neither its
    heading, kind, bars nor hint, and says why."""
    markup = "<img src=x onerror=\"document.title='owned'\">"
    text = f"Pay {MASK} <b>now</b>."
    tokens = [{"token": markup, "probability": 0.75}, {"token": "<b>x</b>", "probability": 0.25}]
    kind = f"{markup} kind"
    kinds = [{"label": kind, "probability": 0.9985}, {"label": "<i>other</i>", "probability": 0.00125}]
    hostile = {"text": text, "filled": "pay <img> <b>now</b>.", "masks": [{"position": 1, "top": tokens}]}
    hostile |= {"unfilled": 0, "top": kinds, "label": kind}
    with open_playground(browser, project.url) as page:
        title = page.title()
        page.route("**/predict", lambda route: route.fulfill(json=hostile))
        fill_in(page, text)
        assert_page_shows(page, text, hostile)
        assert shown_text(page) == f"Pay {markup} <b>now</b>."
        assert shown_bars(page, "#bars") == [
            [f"{markup} kind", 0.9985, "99.9%"],
            ["<i>other</i>", 0.00125, "0.1%"],
        ]
        assert page.locator("#result img, #result b, #result i").count() == 0
        page.unroute("**/predict")
        real = predicted(project, TEXT)
        unlabelled = {key: value for key, value in real.items() if key not in ("top", "label")}
        page.route("**/predict", lambda route: route.fulfill(json=unlabelled))
        fill_in(page, TEXT)
        assert_page_shows(page, TEXT, unlabelled)
        assert page.inner_text("#no-probe") == (
            "The run has no clause labels, so there is no probe to name the clause's kind."
        )
        assert not page.is_visible("#probe-heading") and not page.is_visible("#probe-hint")
        page.unroute("**/predict")
        assert page.title() == title


def test_a_long_text_scrolls_to_the_first_token_filled_in(project: ServedProject, browser: object) -> None:
    """A text longer than its box scrolls in it, and opens at the first token filled in (a model
    read with a larger max_length fills a [MASK] far down a long text)."""
    lines = [f"Clause {n}: the Vendor shall deliver the goods." for n in range(200)]
    lines[150] = f"Clause 150: the courts of {MASK} shall have jurisdiction."
    text = "\n".join(lines)
    answer = {"text": text, "filled": text.lower(), "unfilled": 0}
    answer["masks"] = [{"position": 2000, "top": [{"token": "dublin", "probability": 0.5}]}]
    with open_playground(browser, project.url) as page:
        page.route("**/predict", lambda route: route.fulfill(json=answer))
        fill_in(page, text)
        assert_page_shows(page, text, answer)  # a reply without clause kinds, too
        box = page.locator("#filled").bounding_box()
        mark = page.locator("#filled mark").bounding_box()
        assert page.eval_on_selector("#filled", "f => f.scrollHeight > 2 * f.clientHeight && f.scrollTop > 0")
        assert box["y"] <= mark["y"] and mark["y"] + mark["height"] <= box["y"] + box["height"]
        assert box["height"] < 0.5 * page.viewport_size["height"]
        screenshot(page, "mlm-playground-long-text")
        page.unroute("**/predict")
        fill_in(page, TEXT)  # a short text after it: shown from its start
        assert page.eval_on_selector("#filled", "f => f.scrollTop") == 0


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (the filled-in tokens and their
    numbers, a [MASK] left, the ranked tokens and kinds, hints, the note, the error line) and what is
    behind it."""
    late = f"The {MASK} shall pay. " + "The Vendor shall deliver the goods. " * 20 + f"This {MASK} ends."
    with open_playground(browser, project.url, scheme) as page:
        fill_in(page, "   ")
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        fill_in(page, late)
        checked += colours_of(page, ["#unfilled", ".unfilled-mask"])
        fill_in(page, TEXT)
        page.wait_for_selector("#examples button")
        checked += colours_of(page, [
            "h1", ".lead", "label", ".hint", "#insert-mask", "#fill", "#examples button", "#verdict",
            "#filled", "mark.filled-token", ".filled-word", ".mask-number", ".alternatives-heading",
            ".mask-heading", "#mask-lists .label", "#mask-lists .value", "#clause-kind",
            "#clause-kind strong", "#bars .label", "#bars .value", "#served-model",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        screenshot(page, f"mlm-playground-{scheme}")


def test_malformed_requests_get_a_422_and_the_server_lives_on(project: ServedProject) -> None:
    for body, reason in [
        (b"{not json", "JSON"),
        (b'{"text": ""}', "text"),
        (b'{"text": 5}', "text"),
        (b'{"prompt": "The [MASK] shall pay."}', "text"),
        (b'{"text": "The [MASK] shall pay.", "top_k": 0}', "top_k"),
        (b'{"text": "The [MASK] shall pay.", "top_k": 101}', "top_k"),
        (json.dumps({"text": "x" * 100_001}).encode(), "text"),
    ]:
        status, answer = http(f"{project.url}/predict", body)
        assert status == 422 and reason in answer["detail"] and "\n" not in answer["detail"], answer
    assert http(f"{project.url}/health")[0] == 200


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    records = project.records()
    assert len([r for r in records if r["kind"] == "eval"]) == 3  # steps 0, 20 and 40
    with open_page(browser, project.url + "/runs?run=first") as (page, _):
        assert_every_control_is_labelled(page)
        page.wait_for_function("() => document.querySelectorAll('#run-select option').length > 1")
        options = page.eval_on_selector_all(
            "#run-select option", "options => options.map(o => [o.value, o.text])"
        )
        step = max(r["step"] for r in records)
        assert options[1:] == [["first", f"first \u00b7 finished, step {step} \u00b7 served"]], options
        assert page.input_value("#run-select") == "first"
        assert_dashboard_shows_run(
            page,
            project,
            ["loss", "lr", "samples_per_s", "grad_norm"],
            ["eval_loss", "perplexity", "masked_accuracy", "macro_f1"],
        )
        screenshot(page, "mlm-dashboard")
        assert_readable_on_a_phone(page, "mlm-dashboard-phone")
