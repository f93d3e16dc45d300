"""The image-captioning project's playground in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained for a few steps (a narrow captioner on small
inputs: the page is under test, not the model) and served for the whole module. What the page
shows (the caption, which is also the preview's alt text, its word count and the other captions
with their log-probabilities) is compared with what POST /predict answers for the same image
bytes, never with hard-coded model output.
"""

from __future__ import annotations

import io
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
    multipart,
    open_page,
    open_playground,
    png_bytes,
    predicted_upload,
    screenshot,
    served_project,
    shown_colours,
    tab_to,
    to_fixed,
)

pytestmark = pytest.mark.slow

# A one-layer decoder on 48-pixel inputs: a few seconds on a CPU.
TRAIN = [
    "--max-steps", "40",
    "--set", "eval_every=20",
    "--set", "log_every=5",
    "--set", "image_size=48",
    "--set", "width=8",
    "--set", "n_embd=32",
    "--set", "n_layer=1",
]  # fmt: skip
PREVIEW_ALT = "The photo being described"  # the preview's alt text until a caption replaces it


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-cap"), "image-captioning", TRAIN) as served:
        yield served


def predicted(project: ServedProject, name: str, data: bytes) -> dict:
    return predicted_upload(project.url, name, data)


def resized_png(data: bytes, width: int, height: int) -> bytes:
    """A PNG scaled to `width` x `height` (not keeping its proportions)."""
    from PIL import Image

    return png_bytes(Image.open(io.BytesIO(data)).resize((width, height), Image.BILINEAR))


def wait_for_caption(page: object) -> None:
    page.wait_for_selector("#captioning:not([hidden])")


def shown_rows(page: object) -> list[list[str]]:
    """[rank, caption, log-probability] of each row of the table of other captions, as shown."""
    return page.eval_on_selector_all(
        "#alternatives tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


def expected_rows(answer: dict) -> list[list[str]]:
    """The table the page should show for `answer`: ranks from 2 (the caption is 1), the captions
    as given, the log-probabilities to two places with a true minus sign."""
    return [
        [str(rank), other["caption"], to_fixed(other["log_probability"], 2).replace("-", "\u2212")]
        for rank, other in enumerate(answer["alternatives"], start=2)
    ]


def assert_page_shows(page: object, answer: dict) -> None:
    """The result card shows `answer`: the caption in large type and as the preview's alt text, its
    word count and log-probability, and the other captions in the server's order with theirs."""
    assert answer["caption"].strip() and answer["words"] == len(answer["caption"].split()), answer
    logs = [other["log_probability"] for other in answer["alternatives"]]
    assert logs == sorted(logs, reverse=True), answer  # the server lists them likeliest first
    assert page.inner_text("#caption") == answer["caption"]
    assert page.get_attribute("#preview", "alt") == answer["caption"]
    count = f"{answer['words']} word{'' if answer['words'] == 1 else 's'}"
    likelihood = to_fixed(answer["log_probability"], 2).replace("-", "\u2212")
    assert page.inner_text("#words") == f"{count}, log-probability {likelihood}."
    assert shown_rows(page) == expected_rows(answer)
    numbers = page.eval_on_selector_all(
        "#alternatives tbody tr",
        "rows => rows.map(r => [r.dataset.caption, Number(r.dataset.logProbability)])",
    )
    assert numbers == [[other["caption"], other["log_probability"]] for other in answer["alternatives"]]
    assert page.is_visible("#alternatives") == bool(answer["alternatives"])
    assert page.is_visible("#no-alternatives") == (not answer["alternatives"])
    assert page.is_visible("#preview") and page.is_visible("#copy-caption")
    assert not page.is_visible("#error")


def test_an_uploaded_photo_shows_the_servers_caption_words_and_alternatives(
    project: ServedProject, browser: object
) -> None:
    """A photo from the disk, of another size than the training photos: the page shows it while the
    server works, then what /predict answers for the same bytes."""
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Describe a product photo"
        assert page.inner_text("#result-heading") == "Caption"
        assert page.inner_text("#verdict") == "Nothing described yet."
        assert page.get_attribute("#verdict", "aria-live") == "polite"
        assert not page.is_visible("#captioning")
        assert_every_control_is_labelled(page)
        photo = resized_png(example_png(page, 0), 200, 150)
        expected = predicted(project, "photo.png", photo)
        assert expected["alternatives"], expected  # beam search keeps several captions
        held: list[object] = []
        page.route("**/predict", lambda route: held.append(route))  # held until the preview is seen
        choose_file(page, "photo.png", "image/png", photo)
        page.wait_for_function("() => document.getElementById('preview').naturalWidth === 200")
        assert page.is_visible("#preview")
        assert page.inner_text("#verdict") == "Describing the photo\u2026"
        assert not page.is_visible("#captioning")
        for _ in range(50):  # the route handler runs while Playwright waits
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        with page.expect_response("**/predict") as answer:
            held[0].continue_()
        assert answer.value.status == 200 and answer.value.json() == expected
        wait_for_caption(page)
        assert_page_shows(page, expected)
        screenshot(page, "cap-playground")


def test_a_validation_photo_is_described_from_one_click(project: ServedProject, browser: object) -> None:
    """One click on an example posts its PNG bytes, as an upload would, and the page shows what
    /predict answers for those bytes."""
    with open_playground(browser, project.url) as page:
        photo = example_png(page, 2)
        assert page.locator("#examples img").count() == 6
        assert page.get_attribute("#examples img >> nth=2", "alt") == "Validation photo 3"
        assert (http(f"{project.url}/api/examples")[1]["task"]) == "image-captioning"
        expected = predicted(project, "example.png", photo)
        with page.expect_response("**/predict") as answer:
            page.locator("#examples button").nth(2).click()
        assert answer.value.status == 200 and answer.value.json() == expected
        wait_for_caption(page)
        assert_page_shows(page, expected)
        shown = page.eval_on_selector("#preview", "i => [i.naturalWidth, i.naturalHeight]")
        assert shown == [96, 96]  # the example itself is previewed


def test_the_caption_is_the_previews_alt_text(project: ServedProject, browser: object) -> None:
    """Once described, the preview is named by its caption (what a screen reader reads for it);
    while a new photo is being described it is named as the photo being described, not by the
    caption of the photo before, and a failed upload leaves no caption behind."""
    with open_playground(browser, project.url) as page:
        assert page.get_attribute("#preview", "alt") == PREVIEW_ALT
        first = predicted(project, "first.png", example_png(page, 1))
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(1).click()
        wait_for_caption(page)
        assert page.get_attribute("#preview", "alt") == first["caption"]
        assert page.get_by_role("img", name=first["caption"], exact=True).count() == 1
        second_photo = resized_png(example_png(page, 4), 120, 120)
        second = predicted(project, "second.png", second_photo)
        held: list[object] = []
        page.route("**/predict", lambda route: held.append(route))
        choose_file(page, "second.png", "image/png", second_photo)
        page.wait_for_function("() => document.getElementById('preview').naturalWidth === 120")
        assert page.get_attribute("#preview", "alt") == PREVIEW_ALT
        for _ in range(50):
            if held:
                break
            page.wait_for_timeout(20)
        with page.expect_response("**/predict"):
            held[0].continue_()
        page.unroute("**/predict")
        page.wait_for_function(
            "caption => document.getElementById('preview').alt === caption", arg=second["caption"]
        )
        assert_page_shows(page, second)
        with page.expect_response("**/predict"):
            choose_file(page, "notes.txt", "text/plain", b"hello")
        page.wait_for_selector("#error:not([hidden])")
        assert page.get_attribute("#preview", "alt") == PREVIEW_ALT and not page.is_visible("#preview")


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    status, refused = http(f"{project.url}/predict", *multipart("file", "notes.txt", b"hello"))
    assert status == 415 and refused["detail"] and "\n" not in refused["detail"]
    with open_playground(browser, project.url) as page:
        photo = example_png(page, 0)
        with page.expect_response("**/predict"):
            page.locator("#examples button").first.click()  # a result first: the error must replace it
        wait_for_caption(page)
        with page.expect_response("**/predict") as answer:
            choose_file(page, "notes.txt", "text/plain", b"hello")
        assert answer.value.status == 415 and answer.value.json() == refused
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == f"notes.txt: {refused['detail']}"
        assert page.get_attribute("#error", "role") == "alert"
        assert page.inner_text("#verdict") == "No caption."
        assert not page.is_visible("#captioning") and not page.is_visible("#preview")
        assert page.locator("#caption, #alternatives tbody tr").count() == 0
        screenshot(page, "cap-playground-bad-upload")
        expected = predicted(project, "example.png", photo)
        with page.expect_response("**/predict"):
            page.locator("#examples button").first.click()  # the page still works, and the error goes
        wait_for_caption(page)
        assert_page_shows(page, expected)
    assert http(f"{project.url}/health")[0] == 200  # the server lives on


def test_a_file_over_10_mb_is_refused_before_uploading(
    project: ServedProject, browser: object, tmp_path: Path
) -> None:
    """The page refuses what the server would refuse with a 413, without sending it; what was
    shown stays."""
    status, refused = http(f"{project.url}/predict", *multipart("file", "huge.png", bytes(10 * 2**20 + 1)))
    assert status == 413 and "larger than 10 MB" in refused["detail"]
    with open_playground(browser, project.url) as page:
        assert_a_file_over_10_mb_is_refused_before_uploading(page, tmp_path)
        assert not page.is_visible("#captioning")
        assert page.inner_text("#verdict") == "Nothing described yet."
        expected = predicted(project, "example.png", example_png(page, 3))
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(3).click()
        wait_for_caption(page)
        again = tmp_path / "again.png"
        again.write_bytes(bytes(10 * 2**20 + 1))
        page.set_input_files("#file", again)  # refused again: the caption stays
        page.wait_for_function("() => document.getElementById('error').textContent.startsWith('again.png')")
        assert page.is_visible("#error")
        assert page.inner_text("#caption") == expected["caption"]
        assert page.get_attribute("#preview", "alt") == expected["caption"]


def test_the_drop_zone_the_examples_and_the_copy_button_work_from_the_keyboard(
    project: ServedProject, browser: object
) -> None:
    browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=project.url)
    try:
        with open_playground(browser, project.url) as page:
            photo = resized_png(example_png(page, 5), 160, 120)
            tab_to(page, "file")
            outline = page.evaluate("getComputedStyle(document.getElementById('drop-zone')).outlineStyle")
            assert outline == "solid"  # the zone shows where the focus is
            choose_with_space(page, "keys.png", photo)
            wait_for_caption(page)
            assert_page_shows(page, predicted(project, "keys.png", photo))
            expected = predicted(project, "example.png", example_png(page, 4))
            page.locator("#examples button").nth(4).focus()
            with page.expect_response("**/predict"):
                page.keyboard.press("Enter")  # an example is picked with the keyboard too
            page.wait_for_function(
                "caption => document.getElementById('preview').alt === caption", arg=expected["caption"]
            )
            assert_page_shows(page, expected)
            tab_to(page, "copy-caption")  # the next stop after the examples
            page.keyboard.press("Enter")
            page.wait_for_function("() => document.getElementById('copy-status').textContent === 'Copied.'")
            assert page.evaluate("navigator.clipboard.readText()") == expected["caption"]
    finally:
        browser.clear_permissions()


def test_server_strings_are_shown_as_text(project: ServedProject, browser: object) -> None:
    """Whatever words a model trained on other data writes go into the page as text: the server's
    answer for a photo, its captions replaced with markup, is shown as it is (none of it becomes an
    element); one word is "1 word"; an answer with no other caption says so."""
    with open_playground(browser, project.url) as page:
        photo = example_png(page, 0)
        real = predicted(project, "photo.png", photo)
        markup = "<img src=x onerror=\"document.title='owned'\"> mug"
        hostile = {
            **real,
            "caption": markup,
            "words": len(markup.split()),
            "alternatives": [{"caption": "<b>red</b> mug", "log_probability": -0.125}, *real["alternatives"]],
        }
        title = page.title()
        page.route("**/predict", lambda route: route.fulfill(json=hostile))
        choose_file(page, "photo.png", "image/png", photo)
        wait_for_caption(page)
        assert_page_shows(page, hostile)
        assert shown_rows(page)[0] == ["2", "<b>red</b> mug", "\u22120.13"]  # halves away from zero
        assert page.locator("#result img, #result b, #preview[onerror]").count() == 0
        page.unroute("**/predict")
        alone = {**real, "caption": "mug", "words": 1, "alternatives": []}
        page.route("**/predict", lambda route: route.fulfill(json=alone))
        choose_file(page, "photo.png", "image/png", photo)
        page.wait_for_function("() => document.getElementById('preview').alt === 'mug'")
        assert_page_shows(page, alone)
        assert page.inner_text("#words").startswith("1 word, log-probability ")
        assert page.inner_text("#no-alternatives") == "None: beam search kept only the caption above."
        assert page.title() == title


def test_the_playground_is_readable_on_a_phone(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        expected = predicted(project, "example.png", example_png(page, 1))
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(1).click()
        wait_for_caption(page)
        assert_page_shows(page, expected)
        assert_readable_on_a_phone(page, "cap-playground-phone")
        page.set_viewport_size({"width": 390, "height": 844})
        # The table of other captions fits the phone's width too: it does not scroll sideways.
        assert page.eval_on_selector(".table-wrap", "w => w.scrollWidth - w.clientWidth") <= 0
        assert_page_shows(page, expected)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (caption, word count, table,
    hint, buttons, error line, drop zone) and what is behind it."""
    with open_playground(browser, project.url, scheme) as page:
        with page.expect_response("**/predict"):
            choose_file(page, "notes.txt", "text/plain", b"hello")
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        expected = predicted(project, "example.png", example_png(page, 2))
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(2).click()
        wait_for_caption(page)
        assert_page_shows(page, expected)
        page.click("#copy-caption")  # copied, or selected where the browser does not allow it
        page.wait_for_function("() => document.getElementById('copy-status').textContent !== ''")
        checked += colours_of(page, [
            "h1", ".lead", "#drop-zone strong", "#file-hint", "#caption", "#words", "#copy-caption",
            "#copy-status", "#alternatives-heading", "#alternatives th", "#alternatives td",
            "#log-probability-hint", "#served-model",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        screenshot(page, f"cap-playground-{scheme}")


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
            page, project, ["loss", "lr", "samples_per_s", "grad_norm"], ["eval_loss", "bleu", "cider"]
        )
        screenshot(page, "cap-dashboard")
        assert_readable_on_a_phone(page, "cap-dashboard-phone")
