"""The object-detection project's playground in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained for a few steps (a narrow detector on small
inputs, with a low score threshold so that the barely trained model still reports boxes) and
served for the whole module. What the page shows (the verdict, the boxes over the frame, the
table) is compared with what POST /predict answers for the same image bytes, never with
hard-coded model output.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.web_support import (
    PHONE,
    ServedProject,
    assert_a_file_over_10_mb_is_refused_before_uploading,
    assert_every_control_is_labelled,
    assert_readable,
    assert_readable_on_a_phone,
    choose_file,
    choose_with_space,
    colours_of,
    example_png,
    hex_to_rgb,
    http,
    multipart,
    open_playground,
    png_bytes,
    predicted_upload,
    screenshot,
    served_project,
    shown_colours,
    tab_to,
)

pytestmark = pytest.mark.slow

# A narrow detector on 160-pixel-wide inputs, a few seconds on a CPU: the page is under test, not
# the model. The low threshold makes even this model report boxes on the validation frames.
TRAIN = [
    "--max-steps", "30",
    "--set", "eval_every=15",
    "--set", "log_every=5",
    "--set", "input_width=160",
    "--set", "width=8",
    "--set", "head_width=16",
    "--set", "score_threshold=0.05",
]  # fmt: skip
CLASSES = {"person": "#e4572e", "forklift": "#1e88e5"}
PLURALS = {"person": "people", "forklift": "forklifts"}
NEUTRAL = "#8c959f"  # the page's grey for a box whose colour is not #rrggbb


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-det"), "object-detection", TRAIN) as served:
        yield served


def predicted(project: ServedProject, name: str, data: bytes) -> dict:
    return predicted_upload(project.url, name, data)


def resized_png(data: bytes, width: int, height: int) -> bytes:
    """A PNG scaled to `width` x `height` (not keeping its proportions)."""
    from PIL import Image

    return png_bytes(Image.open(io.BytesIO(data)).resize((width, height), Image.BILINEAR))


# Chromium does not show Playwright a request body that holds a file: this records, in the page,
# the name, type and bytes of each file the page posts (fetch is looked up at each call).
POSTED_FILES = """() => {
  window.postedFiles = [];
  const send = window.fetch;
  window.fetch = async (path, options = {}) => {
    const file = options.body instanceof FormData ? options.body.get("file") : null;
    if (file) window.postedFiles.push([file.name, file.type, [...new Uint8Array(await file.arrayBuffer())]]);
    return send(path, options);
  };
}"""


def wait_for_boxes(page: object) -> None:
    page.wait_for_selector("#detection:not([hidden])")


def half_up(value: float, places: int) -> str:
    """`value` rounded as JavaScript's toFixed and Math.round do (halves away from zero, on the
    float's exact value), as text."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def verdict_for(answer: dict) -> str:
    """What the page should say of `answer`: how many of each class, from its counts."""
    parts = [
        f"{count} {label if count == 1 or label not in PLURALS else PLURALS[label]}"
        for label, count in answer["counts"].items()
        if count
    ]
    if not parts:
        return "Nothing found."
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f"Found {listed}."


def table_rows(page: object) -> list[list[str]]:
    """[class shown, score, top left, bottom right] of each row of the table of boxes."""
    return page.eval_on_selector_all(
        "#box-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


def drawn_boxes(page: object) -> list[dict]:
    """Each box drawn over the frame, in the order of the answer: its label, score, edge colour,
    its rect's corners in the frame's pixels and on the screen, and its tag's text and place."""
    drawn = page.evaluate(
        """() => [...document.querySelectorAll('#boxes g.box')].map(g => {
             const edge = g.querySelector('rect.edge');
             const onScreen = edge.getBoundingClientRect();
             const tag = document.querySelector(`#box-labels .box-label[data-index="${g.dataset.index}"]`);
             const tagBox = tag.getBoundingClientRect();
             return {
               index: Number(g.dataset.index), label: g.dataset.label, score: Number(g.dataset.score),
               stroke: getComputedStyle(edge).stroke,
               corners: ['x', 'y', 'width', 'height'].map(a => Number(edge.getAttribute(a))),
               screen: [onScreen.left, onScreen.top, onScreen.right, onScreen.bottom],
               tag: tag.textContent, tagBox: [tagBox.left, tagBox.top, tagBox.right, tagBox.bottom],
               tagInside: tag.classList.contains('inside'),
             };
           })"""
    )
    return sorted(drawn, key=lambda box: box["index"])


def assert_page_shows(page: object, answer: dict) -> None:
    """The result card shows `answer`: the verdict from its counts, the frame at its size with one
    rect per box in its class's colour and tagged "label score", the caption, and the table."""
    boxes = answer["boxes"]
    assert page.inner_text("#verdict") == verdict_for(answer)
    natural = page.eval_on_selector("#overlay-image", "i => [i.naturalWidth, i.naturalHeight]")
    assert natural == [answer["width"], answer["height"]]
    assert page.get_attribute("#boxes", "viewBox") == f"0 0 {answer['width']} {answer['height']}"
    drawn = drawn_boxes(page)
    assert [(d["label"], d["score"]) for d in drawn] == [(b["label"], b["score"]) for b in boxes]
    assert [d["stroke"] for d in drawn] == [hex_to_rgb(b["colour"]) for b in boxes]
    assert [d["tag"] for d in drawn] == [f"{b['label']} {half_up(b['score'], 2)}" for b in boxes]
    for shown, box in zip(drawn, boxes, strict=True):
        x0, y0, x1, y1 = box["box"]
        assert shown["corners"] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=1e-6)
    many = "One box" if len(boxes) == 1 else f"{len(boxes) or 'No'} boxes"
    size = f"{answer['width']} \u00d7 {answer['height']}"
    assert (
        page.inner_text("#threshold") == f"{many} scoring at least {answer['threshold']}, in a {size} frame."
    )
    assert table_rows(page) == [
        [
            b["label"],
            half_up(b["score"], 2),
            ", ".join(half_up(v, 0) for v in b["box"][:2]),
            ", ".join(half_up(v, 0) for v in b["box"][2:]),
        ]
        for b in boxes
    ]
    assert page.is_visible("#box-table") == bool(boxes)
    assert page.is_visible("#overlay-image") and page.is_visible("#preview")
    assert not page.is_visible("#error")


def assert_boxes_sit_on_their_objects(page: object, answer: dict) -> None:
    """Each rect lies, on the screen, where its box's corners fall on the frame as shown (the
    corners scaled by the displayed size over the natural size), within a pixel and a half; its
    tag sits at its top edge, beside one of its upper corners."""
    left, top, width, height, natural_width, natural_height = page.eval_on_selector(
        "#overlay-image",
        "i => { const r = i.getBoundingClientRect(); return [r.left, r.top, r.width, r.height,"
        " i.naturalWidth, i.naturalHeight]; }",
    )
    across, down = width / natural_width, height / natural_height
    assert across == pytest.approx(down, rel=0.02)  # shown in its own proportions
    drawn = drawn_boxes(page)
    assert len(drawn) == len(answer["boxes"]) > 0
    for shown, box in zip(drawn, answer["boxes"], strict=True):
        x0, y0, x1, y1 = box["box"]
        expected = [left + x0 * across, top + y0 * down, left + x1 * across, top + y1 * down]
        assert shown["screen"] == pytest.approx(expected, abs=1.5), (box, shown)
        tag_left, tag_top, tag_right, tag_bottom = shown["tagBox"]
        assert min(abs(tag_left - expected[0]), abs(tag_right - expected[2])) < 1.5, (box, shown)
        assert abs((tag_top if shown["tagInside"] else tag_bottom) - expected[1]) < 1.5, (box, shown)


def test_a_validation_frame_is_searched_from_one_click(project: ServedProject, browser: object) -> None:
    """One click on an example posts its PNG bytes, as an upload would, and the page shows what
    /predict answers for those bytes."""
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Find people and forklifts in a camera frame"
        assert page.inner_text("#result-heading") == "Detections"
        assert page.inner_text("#verdict") == "Nothing searched yet."
        assert not page.is_visible("#detection")
        assert_every_control_is_labelled(page)
        frame = example_png(page, 1)
        assert page.locator("#examples img").count() == 6
        expected = predicted(project, "frame.png", frame)
        assert (expected["width"], expected["height"]) == (1280, 720)
        assert set(expected["counts"]) == set(CLASSES) and expected["boxes"], expected
        assert all(b["colour"] == CLASSES[b["label"]] for b in expected["boxes"])
        assert [b["score"] for b in expected["boxes"]] == sorted(
            (b["score"] for b in expected["boxes"]), reverse=True
        )
        page.evaluate(POSTED_FILES)
        with page.expect_response("**/predict") as answer:
            page.locator("#examples button").nth(1).click()
        assert answer.value.status == 200 and answer.value.json() == expected
        name, kind, data = page.evaluate("window.postedFiles")[0]
        assert (name, kind, bytes(data)) == ("example-2.png", "image/png", frame)
        wait_for_boxes(page)
        assert_page_shows(page, expected)
        assert page.get_attribute("#verdict", "aria-live") == "polite"
        screenshot(page, "det-playground")
        assert_readable_on_a_phone(page, "det-playground-phone")


def test_the_boxes_are_drawn_where_they_are_at_every_width(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        expected = predicted(project, "frame.png", example_png(page, 3))
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(3).click()
        wait_for_boxes(page)
        assert_boxes_sit_on_their_objects(page, expected)
        shown_width = page.eval_on_selector("#overlay-image", "i => i.getBoundingClientRect().width")
        page.set_viewport_size(PHONE)
        page.wait_for_function(
            f"() => document.getElementById('overlay-image').clientWidth < {shown_width - 50}"
        )
        assert_boxes_sit_on_their_objects(page, expected)  # the drawing scales with the frame
        # The tags stay inside the frame: none sticks out past its right or left edge.
        frame_left, frame_right = page.eval_on_selector(
            "#overlay", "o => [o.getBoundingClientRect().left, o.getBoundingClientRect().right]"
        )
        for shown in drawn_boxes(page):
            assert frame_left - 1 <= shown["tagBox"][0] and shown["tagBox"][2] <= frame_right + 1, shown
        # The table of boxes fits the phone's width too: it does not scroll sideways in its card.
        assert page.eval_on_selector(".table-wrap", "w => w.scrollWidth - w.clientWidth") <= 0


def test_an_uploaded_frame_of_another_shape_is_previewed_and_searched(
    project: ServedProject, browser: object
) -> None:
    """A portrait frame from the disk: the page shows it while the server works, then the boxes
    over it in its own proportions."""
    with open_playground(browser, project.url) as page:
        image = resized_png(example_png(page, 0), 360, 640)
        expected = predicted(project, "portrait.png", image)
        assert (expected["width"], expected["height"]) == (360, 640)
        held: list[object] = []
        page.route("**/predict", lambda route: held.append(route))  # held until the preview is seen
        choose_file(page, "portrait.png", "image/png", image)
        page.wait_for_function("() => document.getElementById('preview').naturalWidth === 360")
        assert page.is_visible("#preview")
        assert page.inner_text("#verdict") == "Looking for people and forklifts\u2026"
        assert not page.is_visible("#detection")
        for _ in range(50):  # the route handler runs while Playwright waits
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        with page.expect_response("**/predict"):
            held[0].continue_()
        wait_for_boxes(page)
        assert_page_shows(page, expected)
        if expected["boxes"]:
            assert_boxes_sit_on_their_objects(page, expected)
        width, height = page.eval_on_selector(
            "#overlay", "o => [o.getBoundingClientRect().width, o.getBoundingClientRect().height]"
        )
        assert width / height == pytest.approx(360 / 640, rel=0.02)


def test_a_dropped_frame_is_searched(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        image = resized_png(example_png(page, 2), 640, 360)
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
            list(image),
        )
        wait_for_boxes(page)
        assert_page_shows(page, predicted(project, "dropped.png", image))
        assert "dragging" not in (page.get_attribute("#drop-zone", "class") or "")


def test_a_frame_with_nothing_in_it_says_nothing_was_found(project: ServedProject, browser: object) -> None:
    from PIL import Image

    grey = png_bytes(Image.new("RGB", (1280, 720), (128, 128, 128)))
    expected = predicted(project, "grey.png", grey)
    assert expected["boxes"] == [] and set(expected["counts"].values()) == {0}, expected
    with open_playground(browser, project.url) as page:
        page.locator("#examples button").first.click()  # boxes first: the empty answer must clear them
        wait_for_boxes(page)
        assert page.locator("#boxes rect").count() > 0
        with page.expect_response("**/predict"):
            choose_file(page, "grey.png", "image/png", grey)
        wait_for_boxes(page)
        assert_page_shows(page, expected)
        assert page.inner_text("#verdict") == "Nothing found."
        assert page.locator("#boxes rect, #box-labels .box-label, #box-table tbody tr").count() == 0
        assert not page.is_visible("#box-table")
        screenshot(page, "det-playground-nothing")


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    status, refused = http(f"{project.url}/predict", *multipart("file", "notes.txt", b"hello"))
    assert status == 415 and refused["detail"] and "\n" not in refused["detail"]
    with open_playground(browser, project.url) as page:
        page.locator("#examples button").first.click()  # a result first: the error must replace it
        wait_for_boxes(page)
        with page.expect_response("**/predict") as answer:
            choose_file(page, "notes.txt", "text/plain", b"hello")
        assert answer.value.status == 415
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == f"notes.txt: {refused['detail']}"
        assert page.get_attribute("#error", "role") == "alert"
        assert page.inner_text("#verdict") == "No boxes."
        assert not page.is_visible("#detection") and not page.is_visible("#preview")
        assert page.locator("#boxes rect, #box-table tbody tr").count() == 0
        screenshot(page, "det-playground-bad-upload")
        with page.expect_response("**/predict"):
            page.locator("#examples button").first.click()  # the page still works, and the error goes
        wait_for_boxes(page)
        assert not page.is_visible("#error")
    assert http(f"{project.url}/health")[0] == 200  # the server lives on


def test_a_file_over_10_mb_is_refused_before_uploading(
    project: ServedProject, browser: object, tmp_path: Path
) -> None:
    with open_playground(browser, project.url) as page:
        assert_a_file_over_10_mb_is_refused_before_uploading(page, tmp_path)
        assert not page.is_visible("#detection")


def test_the_server_refuses_bad_uploads_with_a_one_line_reason(project: ServedProject) -> None:
    from PIL import Image

    body, content_type = multipart("other", "frame.png", b"x")
    status, answer = http(f"{project.url}/predict", body, content_type)
    assert status == 422 and answer["detail"].startswith("file") and "\n" not in answer["detail"]
    status, answer = http(f"{project.url}/predict", *multipart("file", "huge.png", bytes(10 * 2**20 + 1)))
    assert status == 413 and "larger than 10 MB" in answer["detail"]
    wide = png_bytes(Image.new("1", (4097, 4097)))  # a few kB, but more pixels than 4096 x 4096
    status, answer = http(f"{project.url}/predict", *multipart("file", "wide.png", wide))
    assert status == 413 and "4097x4097" in answer["detail"] and "\n" not in answer["detail"]
    status, answer = http(f"{project.url}/api/examples")
    assert status == 200 and answer["task"] == "object-detection" and len(answer["examples"]) == 6


def test_the_drop_zone_and_the_examples_work_from_the_keyboard(
    project: ServedProject, browser: object
) -> None:
    with open_playground(browser, project.url) as page:
        image = resized_png(example_png(page, 4), 320, 180)
        tab_to(page, "file")
        outline = page.evaluate("getComputedStyle(document.getElementById('drop-zone')).outlineStyle")
        assert outline == "solid"  # the zone shows where the focus is
        choose_with_space(page, "keys.png", image)
        wait_for_boxes(page)
        assert_page_shows(page, predicted(project, "keys.png", image))
        expected = predicted(project, "frame.png", example_png(page, 5))
        page.locator("#examples button").nth(5).focus()
        with page.expect_response("**/predict"):
            page.keyboard.press("Enter")  # an example is picked with the keyboard too
        page.wait_for_function("() => document.getElementById('overlay-image').naturalWidth === 1280")
        wait_for_boxes(page)
        assert_page_shows(page, expected)


def test_server_strings_are_shown_as_text_with_plural_words_and_safe_colours(
    project: ServedProject, browser: object
) -> None:
    """A project trained on its own data names its own classes: whatever names and colours the
    server returns are written as text, a colour that is not one is drawn grey, the built-in
    classes are counted with their plural words and another class as "N label"."""
    label = "<img src=x onerror=\"document.title='owned'\">"
    answer = {
        "width": 320,
        "height": 180,
        "threshold": 0.5,
        "boxes": [
            {"label": "forklift", "score": 0.875, "box": [10, 20, 110, 170.4], "colour": "#1e88e5"},
            {
                "label": label,
                "score": 0.5,
                "box": [200, 0, 320, 60],
                "colour": "red; background-image: url(x)",
            },
            {"label": "forklift", "score": 0.4, "box": [0, 100, 40, 180], "colour": "#1e88e5"},
            {"label": "person", "score": 0.3, "box": [150, 50, 190, 150], "colour": "#e4572e"},
        ],
        "counts": {"person": 1, "forklift": 2, label: 1, "pallet": 0},
    }
    with open_playground(browser, project.url) as page:
        title = page.title()
        image = resized_png(example_png(page, 0), 320, 180)
        page.route("**/predict", lambda route: route.fulfill(json=answer))
        choose_file(page, "own.png", "image/png", image)
        wait_for_boxes(page)
        assert page.inner_text("#verdict") == f"Found 1 person, 2 forklifts and 1 {label}."
        drawn = drawn_boxes(page)
        assert [d["tag"] for d in drawn] == ["forklift 0.88", f"{label} 0.50", "forklift 0.40", "person 0.30"]
        assert [d["stroke"] for d in drawn] == [
            hex_to_rgb(c) for c in ["#1e88e5", NEUTRAL, "#1e88e5", "#e4572e"]
        ]
        assert table_rows(page)[:2] == [
            ["forklift", "0.88", "10, 20", "110, 170"],
            [label, "0.50", "200, 0", "320, 60"],
        ]
        assert page.locator("#result img").count() == 1 and page.locator("#result b").count() == 0
        assert drawn[1]["tagInside"]  # a box at the top of the frame has its tag inside it
        assert_boxes_sit_on_their_objects(page, answer)
        page.unroute("**/predict")
        several = {**answer, "boxes": answer["boxes"][:1], "counts": {"person": 2, "forklift": 1}}
        page.route("**/predict", lambda route: route.fulfill(json=several))
        choose_file(page, "own.png", "image/png", image)
        page.wait_for_function("() => document.querySelectorAll('#boxes g.box').length === 1")
        assert page.inner_text("#verdict") == "Found 2 people and 1 forklift."
        page.unroute("**/predict")
        page.route(
            "**/predict", lambda route: route.fulfill(status=415, json={"detail": "<i>not</i> an image"})
        )
        choose_file(page, "own.png", "image/png", image)
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == "own.png: <i>not</i> an image"
        assert page.locator("#error i").count() == 0
        assert page.title() == title


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (verdict, caption, table, error
    line, drop zone) and what is behind it, the boxes' tags on their class colours included."""
    with open_playground(browser, project.url, scheme) as page:
        with page.expect_response("**/predict"):
            choose_file(page, "notes.txt", "text/plain", b"hello")
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(2).click()
        wait_for_boxes(page)
        checked += colours_of(page, [
            "h1", ".lead", "#drop-zone strong", "#file-hint", "#verdict", "#threshold",
            "#box-table th", "#box-table td", "#served-model", "#box-labels .box-label",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        tags = page.eval_on_selector_all(
            "#box-labels .box-label", "tags => tags.map(t => getComputedStyle(t).backgroundColor)"
        )
        assert set(tags) <= {hex_to_rgb(colour) for colour in CLASSES.values()}  # on its class's colour
        screenshot(page, f"det-playground-{scheme}")
