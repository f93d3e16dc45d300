"""The semantic-segmentation project's pages in headless Chromium, against its real server.

One project is rendered with `ccpt new`, trained for a few steps (a small network on small tiles)
and served for the whole module. What the page shows is compared with what POST /predict answers
for the same image bytes, never with hard-coded model output.
"""

from __future__ import annotations

import base64
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
    contrast,
    example_png,
    hex_to_rgb,
    http,
    multipart,
    open_page,
    open_playground,
    predicted_upload,
    rgba,
    screenshot,
    served_project,
    shown_colours,
    tab_to,
)

pytestmark = pytest.mark.slow

# A small U-Net on 32-pixel tiles, a few seconds on a CPU: the page is under test, not the model.
TRAIN = [
    "--max-steps", "30",
    "--set", "eval_every=15",
    "--set", "log_every=5",
    "--set", "tile_size=32",
    "--set", "depth=2",
    "--set", "width=8",
    "--set", "window_size=32",  # stitched from many windows, as before: its speed is far from the gate
]  # fmt: skip
CLASSES = ["other", "building", "road", "vegetation", "water"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-seg"), "semantic-segmentation", TRAIN) as served:
        yield served


def predicted(project: ServedProject, name: str, data: bytes) -> dict:
    return predicted_upload(project.url, name, data)


def crop_png(data: bytes, width: int, height: int) -> bytes:
    """The top-left `width` x `height` pixels of a PNG, as a PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).crop((0, 0, width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def wait_for_mask(page: object) -> None:
    page.wait_for_selector("#segmentation:not([hidden])")


def legend_rows(page: object) -> list[list[str]]:
    """[label, colour, visible class name, share shown] of each row of the legend."""
    return page.eval_on_selector_all(
        "#legend tbody tr",
        "rows => rows.map(r => [r.dataset.label, r.dataset.colour, r.cells[0].innerText.trim(),"
        " r.cells[1].innerText])",
    )


def drawn_mask_shares(page: object) -> dict[str, float]:
    """The share of the mask image's pixels in each colour (#rrggbb), read from a canvas."""
    return page.eval_on_selector(
        "#overlay-mask",
        """mask => {
             const canvas = document.createElement('canvas');
             canvas.width = mask.naturalWidth;
             canvas.height = mask.naturalHeight;
             const context = canvas.getContext('2d');
             context.drawImage(mask, 0, 0);
             const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
             const counts = {};
             for (let i = 0; i < pixels.length; i += 4) {
               const hex = '#' + [0, 1, 2].map(k => pixels[i + k].toString(16).padStart(2, '0')).join('');
               counts[hex] = (counts[hex] || 0) + 1;
             }
             const total = canvas.width * canvas.height;
             return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / total]));
           }""",
    )


def assert_page_shows(page: object, answer: dict) -> None:
    """The result card shows `answer`: the mask over the image, both the image's size, the legend
    with each class's colour, name and share, the verdict and the windows line."""
    sizes = page.evaluate(
        """() => ['overlay-image', 'overlay-mask'].map(id => {
             const image = document.getElementById(id);
             const box = image.getBoundingClientRect();
             return [image.naturalWidth, image.naturalHeight, box.x, box.y, box.width, box.height];
           })"""
    )
    (image_width, image_height, *image_box), (mask_width, mask_height, *mask_box) = sizes
    assert (mask_width, mask_height) == (image_width, image_height) == (answer["width"], answer["height"])
    assert mask_box == image_box  # stacked: each mask pixel lies on its image pixel
    width, height = mask_box[2:]
    assert width > 0 and abs(width / height - answer["width"] / answer["height"]) < 0.02
    src = page.get_attribute("#overlay-mask", "src")
    assert src == "data:image/png;base64," + answer["mask_png"]
    assert (
        page.evaluate("getComputedStyle(document.getElementById('overlay-mask')).imageRendering")
        == "pixelated"
    )

    classes = answer["classes"]
    assert legend_rows(page) == [
        [c["label"], c["colour"], c["label"], f"{c['fraction'] * 100:.1f}%"] for c in classes
    ]
    swatches = page.eval_on_selector_all(
        "#legend .swatch", "spans => spans.map(s => getComputedStyle(s).backgroundColor)"
    )
    assert swatches == [hex_to_rgb(c["colour"]) for c in classes]
    # The mask is drawn in the legend's colours, in the legend's shares.
    drawn = drawn_mask_shares(page)
    for entry in classes:
        assert abs(drawn.get(entry["colour"], 0.0) - entry["fraction"]) < 1e-4, (entry, drawn)
    assert abs(sum(drawn.values()) - 1) < 1e-9 and set(drawn) <= {c["colour"] for c in classes}

    top = max(classes, key=lambda c: c["fraction"])
    assert page.inner_text("#verdict") == (
        f"Labelled {answer['width']} \u00d7 {answer['height']} pixels: mostly {top['label']}"
        f" ({top['fraction'] * 100:.1f}%)."
    )
    windows = answer["windows"]
    expected = "Labelled in one window." if windows == 1 else f"Stitched together from {windows} windows."
    assert page.inner_text("#windows") == expected
    assert page.is_visible("#preview") and not page.is_visible("#error")


def test_a_validation_scene_is_labelled_from_one_click(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Label every pixel of an aerial image"
        assert page.inner_text("#verdict") == "Nothing labelled yet."
        assert not page.is_visible("#segmentation")
        assert_every_control_is_labelled(page)
        scene = example_png(page, 1)
        assert page.locator("#examples img").count() == 6
        expected = predicted(project, "scene.png", scene)
        assert (expected["width"], expected["height"]) == (256, 256) and expected["windows"] > 1
        assert [c["label"] for c in expected["classes"]] == CLASSES
        assert abs(sum(c["fraction"] for c in expected["classes"]) - 1) < 1e-4
        with page.expect_response("**/predict") as answer:
            page.locator("#examples button").nth(1).click()
        assert answer.value.status == 200
        wait_for_mask(page)
        assert_page_shows(page, expected)
        shares = page.eval_on_selector_all(
            "#legend tbody tr", "rows => rows.map(r => Number(r.dataset.fraction))"
        )
        assert len(shares) == 5 and abs(sum(shares) - 1) < 1e-4
        assert page.get_attribute("#verdict", "aria-live") == "polite"
        screenshot(page, "seg-playground")
        assert_readable_on_a_phone(page, "seg-playground-phone")


def test_an_uploaded_png_is_previewed_at_once_and_labelled(project: ServedProject, browser: object) -> None:
    """A file from the disk, not square and not a multiple of the tile size: the page shows it
    while the server works, then the mask over it at its own size."""
    with open_playground(browser, project.url) as page:
        image = crop_png(example_png(page, 2), 100, 60)
        expected = predicted(project, "field.png", image)
        assert (expected["width"], expected["height"]) == (100, 60)
        held: list[object] = []
        page.route("**/predict", lambda route: held.append(route))  # held until the preview is seen
        choose_file(page, "field.png", "image/png", image)
        page.wait_for_function("() => !document.getElementById('preview').hidden")
        page.wait_for_function("() => document.getElementById('preview').naturalWidth === 100")
        assert page.inner_text("#verdict") == "Labelling the pixels…"
        assert not page.is_visible("#segmentation")
        for _ in range(50):  # the route handler runs while Playwright waits
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        with page.expect_response("**/predict"):
            held[0].continue_()
        wait_for_mask(page)
        assert_page_shows(page, expected)


def test_a_dropped_image_is_labelled(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        image = crop_png(example_png(page, 0), 48, 80)
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
        wait_for_mask(page)
        assert_page_shows(page, predicted(project, "dropped.png", image))
        assert "dragging" not in (page.get_attribute("#drop-zone", "class") or "")


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    status, refused = http(f"{project.url}/predict", *multipart("file", "notes.txt", b"hello"))
    assert status == 415 and "\n" not in refused["detail"]
    with open_playground(browser, project.url) as page:
        page.locator("#examples button").first.click()  # a result first: the error must replace it
        wait_for_mask(page)
        with page.expect_response("**/predict") as answer:
            choose_file(page, "notes.txt", "text/plain", b"hello")
        assert answer.value.status == 415
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == f"notes.txt: {refused['detail']}"
        assert page.get_attribute("#error", "role") == "alert"
        assert page.inner_text("#verdict") == "No mask."
        assert not page.is_visible("#segmentation") and not page.is_visible("#preview")
        assert page.locator("#legend tbody tr").count() == 0
        screenshot(page, "seg-playground-bad-upload")
        page.locator("#examples button").first.click()  # the page still works, and the error goes
        wait_for_mask(page)
        assert not page.is_visible("#error")
    assert http(f"{project.url}/health")[0] == 200  # the server lives on


def test_a_file_over_10_mb_is_refused_before_uploading(
    project: ServedProject, browser: object, tmp_path: Path
) -> None:
    with open_playground(browser, project.url) as page:
        assert_a_file_over_10_mb_is_refused_before_uploading(page, tmp_path)
        assert not page.is_visible("#segmentation")


def test_a_missing_file_and_a_huge_one_get_a_4xx_with_a_one_line_reason(project: ServedProject) -> None:
    body, content_type = multipart("other", "scene.png", b"x")
    status, answer = http(f"{project.url}/predict", body, content_type)
    assert status == 422 and answer["detail"].startswith("file") and "\n" not in answer["detail"]
    status, answer = http(f"{project.url}/predict", *multipart("file", "huge.png", bytes(10 * 2**20 + 1)))
    assert status == 413 and "larger than 10 MB" in answer["detail"]
    status, answer = http(f"{project.url}/api/examples")
    assert status == 200 and answer["task"] == "semantic-segmentation" and len(answer["examples"]) == 6


def test_the_opacity_slider_sets_the_masks_opacity(project: ServedProject, browser: object) -> None:
    def shown() -> list[str]:
        return page.evaluate(
            """() => [getComputedStyle(document.getElementById('overlay-mask')).opacity,
                      document.getElementById('opacity-value').textContent,
                      document.getElementById('opacity').getAttribute('aria-valuetext')]"""
        )

    with open_playground(browser, project.url) as page:
        page.locator("#examples button").first.click()
        wait_for_mask(page)
        assert page.get_by_label("Mask opacity").input_value() == "60"
        assert shown() == ["0.6", "60%", "60%"]
        tab_to(page, "opacity")  # from the keyboard
        page.keyboard.press("End")
        assert shown() == ["1", "100%", "100%"]
        page.keyboard.press("Home")
        assert shown() == ["0", "0%", "0%"]
        page.keyboard.press("ArrowRight")
        assert shown() == ["0.05", "5%", "5%"]
        page.get_by_label("Mask opacity").fill("35")
        assert shown() == ["0.35", "35%", "35%"]
        screenshot(page, "seg-playground-opacity")
        with page.expect_response("**/predict"):
            page.locator("#examples button").nth(3).click()  # the next image keeps the chosen opacity
        wait_for_mask(page)
        assert shown() == ["0.35", "35%", "35%"]


def test_the_drop_zone_and_the_examples_work_from_the_keyboard(
    project: ServedProject, browser: object
) -> None:
    with open_playground(browser, project.url) as page:
        image = crop_png(example_png(page, 4), 64, 64)
        tab_to(page, "file")
        outline = page.evaluate("getComputedStyle(document.getElementById('drop-zone')).outlineStyle")
        assert outline == "solid"  # the zone shows where the focus is
        choose_with_space(page, "keys.png", image)
        wait_for_mask(page)
        assert_page_shows(page, predicted(project, "keys.png", image))
        page.locator("#examples button").nth(5).focus()
        with page.expect_response("**/predict"):
            page.keyboard.press("Enter")  # an example is picked with the keyboard too
        page.wait_for_function("() => document.getElementById('overlay-mask').naturalWidth === 256")
        wait_for_mask(page)


def test_server_strings_are_shown_as_text_and_every_colour_has_its_name(
    project: ServedProject, browser: object
) -> None:
    """A project trained on its own data names its own classes: whatever names and colours the
    server returns are written as text, a colour that is not one is dropped, and each swatch has
    its class's name beside it."""
    from PIL import Image

    mask = Image.new("P", (3, 2))
    mask.putpalette([0x8E, 0x44, 0xAD, 0x00, 0xAC, 0xC1] + [0] * 762)
    mask.putdata([0, 0, 1, 1, 1, 1])
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    label = "<img src=x onerror=\"document.title='owned'\">"
    answer = {
        "width": 3,
        "height": 2,
        "windows": 1,
        "classes": [
            {"label": label, "colour": "#8e44ad", "fraction": 2 / 6},
            {"label": "<b>field</b>", "colour": "red; background-image: url(x)", "fraction": 4 / 6},
        ],
        "mask_png": base64.b64encode(buffer.getvalue()).decode(),
    }
    with open_playground(browser, project.url) as page:
        title = page.title()
        page.route("**/predict", lambda route: route.fulfill(json=answer))
        choose_file(page, "own.png", "image/png", crop_png(example_png(page, 0), 3, 2))
        wait_for_mask(page)
        assert [row[2] for row in legend_rows(page)] == [label, "<b>field</b>"]
        assert page.locator("#result img").count() == 2 and page.locator("#result b").count() == 0
        assert page.inner_text("#verdict") == "Labelled 3 \u00d7 2 pixels: mostly <b>field</b> (66.7%)."
        assert page.inner_text("#windows") == "Labelled in one window."
        swatches = page.eval_on_selector_all(
            "#legend .swatch", "spans => spans.map(s => getComputedStyle(s).backgroundColor)"
        )
        muted = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--muted').trim()")
        assert swatches == [hex_to_rgb("#8e44ad"), hex_to_rgb(muted)]
        assert page.eval_on_selector_all(
            "#legend .swatch", "s => s.map(e => e.getAttribute('aria-hidden'))"
        ) == [
            "true",
            "true",
        ]
        page.unroute("**/predict")
        page.route(
            "**/predict", lambda route: route.fulfill(status=415, json={"detail": "<i>not</i> an image"})
        )
        choose_file(page, "own.png", "image/png", crop_png(example_png(page, 0), 3, 2))
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == "own.png: <i>not</i> an image"
        assert page.locator("#error i").count() == 0
        assert page.title() == title


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (verdict, windows line, legend,
    slider label, error line, drop zone) and what is behind it; 3:1 for each swatch's edge."""
    with open_playground(browser, project.url, scheme) as page:
        with page.expect_response("**/predict"):
            choose_file(page, "notes.txt", "text/plain", b"hello")
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        page.locator("#examples button").first.click()
        wait_for_mask(page)
        checked += colours_of(page, [
            "h1", ".lead", "#drop-zone strong", "#file-hint", "#verdict", "#verdict strong", "#windows",
            "label[for=opacity]", "#opacity-value", "#legend th", "#legend td", "#served-model",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        edges = page.eval_on_selector_all(
            "#legend .swatch",
            """swatches => swatches.map(s => [getComputedStyle(s).borderTopColor,
                                              getComputedStyle(s.closest('.card')).backgroundColor])""",
        )
        assert len(edges) == 5
        for edge, card in edges:
            assert contrast(rgba(edge), rgba(card)) >= 3
        screenshot(page, f"seg-playground-{scheme}")


def test_the_dashboard_draws_the_runs_curves_from_its_metrics(
    project: ServedProject, browser: object
) -> None:
    with open_page(browser, project.url + "/runs") as (page, _):
        assert_dashboard_shows_run(
            page, project, ["loss", "lr", "samples_per_s", "grad_norm"], ["eval_loss", "accuracy", "miou"]
        )
        screenshot(page, "seg-dashboard")
