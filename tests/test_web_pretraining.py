"""The image-pretraining project's playground in headless Chromium, against its real server.

One project is rendered with `ccpt new` (from the built-in spec of the kind, vision-pretraining),
trained for a few steps (a one-layer encoder and decoder: the page is under test, not the model) and
served for the whole module. What the page shows (the image seen, masked and restored, the share of
patches hidden and the error on them, the probe's label and its ranked labels) is compared with what
POST /predict answers for the same image bytes, share and draw, never with hard-coded model output.
"""

from __future__ import annotations

import base64
import io
import urllib.parse
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
    screenshot,
    served_project,
    shown_colours,
    tab_to,
    to_fixed,
)

pytestmark = pytest.mark.slow

# A one-layer encoder and decoder of 32-pixel shapes: a few seconds on a CPU.
TRAIN = [
    "--max-steps", "40",
    "--set", "eval_every=20",
    "--set", "log_every=5",
    "--set", "n_embd=32",
    "--set", "n_layer=1",
    "--set", "decoder_embd=16",
    "--set", "decoder_layer=1",
    "--set", "decoder_head=2",
    "--set", "batch_size=32",
    "--set", "eval_batches=4",
]  # fmt: skip
PANELS = {"#seen": "image_png", "#masked": "masked_png", "#restored": "reconstruction_png"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    parent = tmp_path_factory.mktemp("web-pretraining")
    with served_project(parent, "image-pretraining", TRAIN, spec="vision-pretraining") as served:
        yield served


def shape_png(width: int = 96, height: int = 80) -> bytes:
    """A picture of a red disc and a dark bar on a light background, of another size than the
    training images, as a PNG file from the disk would be."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (230, 236, 242))
    draw = ImageDraw.Draw(image)
    left, top, side = width // 5, height // 5, height // 2
    draw.ellipse((left, top, left + side, top + side), fill=(200, 30, 40))
    draw.rectangle((width * 2 // 3, height // 8, width * 2 // 3 + 8, height - 8), fill=(20, 40, 90))
    return png_bytes(image)


def resized_png(data: bytes, width: int, height: int) -> bytes:
    from PIL import Image

    return png_bytes(Image.open(io.BytesIO(data)).resize((width, height), Image.BILINEAR))


def restored(project: ServedProject, name: str, image: bytes, mask_ratio: float, seed: int) -> dict:
    """What POST /predict answers for these bytes, share and draw: what the page must then show."""
    query = urllib.parse.urlencode({"mask_ratio": mask_ratio, "seed": seed})
    status, answer = http(f"{project.url}/predict?{query}", *multipart("file", name, image))
    assert status == 200, answer
    return answer


def refused(project: ServedProject, name: str, data: bytes) -> tuple[int, str]:
    """The status and one-line reason of an upload that POST /predict refuses."""
    status, answer = http(f"{project.url}/predict", *multipart("file", name, data))
    assert 400 <= status < 500 and answer["detail"] and "\n" not in answer["detail"], answer
    return status, answer["detail"]


def examples(project: ServedProject) -> list[str]:
    status, body = http(f"{project.url}/api/examples")
    assert status == 200 and body["task"] == "image-pretraining"
    return body["examples"]


def example_png_bytes(project: ServedProject, index: int) -> bytes:
    """The PNG bytes of validation image `index` as /api/examples serves it (and its button posts)."""
    return base64.b64decode(examples(project)[index].split(",", 1)[1])


def asked(response: object) -> dict[str, str]:
    """The query of the page's POST /predict, {name: value}."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(response.request.url).query))


def record_uploads(page: object) -> list[bytes]:
    """The bodies the page posts to /predict from now on (sent on unchanged): a blob's bytes are
    only seen by a route."""
    bodies: list[bytes] = []

    def record(route: object) -> None:
        bodies.append(route.request.post_data_buffer)
        route.continue_()

    page.route("**/predict*", record)
    return bodies


def percent(probability: float) -> str:
    """A probability as the page writes it: a percentage to one place (JavaScript's toFixed)."""
    return f"{to_fixed(probability * 100, 1)}%"


def stats_line(answer: dict) -> str:
    side, size = answer["patch_size"], answer["image_size"]
    return (
        f"{answer['hidden_patches']} of {answer['patches']} patches hidden ({side} x {side} pixels each,"
        f" the image seen at {size} x {size}); mean squared error on them:"
        f" {to_fixed(answer['reconstruction_error'], 4)}."
    )


def shown_bars(page: object) -> list[list[str]]:
    """[label, percentage] of each of the probe's bars, as shown."""
    return page.eval_on_selector_all(
        "#bars li",
        "items => items.map(i => [i.querySelector('.label').innerText, i.querySelector('.value').innerText])",
    )


def wait_for_panels(page: object, answer: dict) -> None:
    """Wait until the masked panel shows this answer's (the draw and share of the last request)."""
    page.wait_for_function(
        "src => document.getElementById('masked').getAttribute('src') === src",
        arg=f"data:image/png;base64,{answer['masked_png']}",
    )


def assert_page_shows(page: object, answer: dict) -> None:
    """The result card shows `answer`: the server's very three PNGs in their panels, how many
    patches it hid and its error on them, the probe's label, and its labels ranked with their
    probabilities in the server's order."""
    wait_for_panels(page, answer)
    for selector, key in PANELS.items():
        assert page.get_attribute(selector, "src") == f"data:image/png;base64,{answer[key]}", selector
        assert page.eval_on_selector(selector, "i => i.complete && i.naturalWidth") == answer["image_size"]
    assert page.inner_text("#restoration-stats") == stats_line(answer)
    top = answer["top"]
    probabilities = [entry["probability"] for entry in top]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.001, answer
    assert answer["label"] == top[0]["label"]
    verdict = f"The probe sees: {answer['label']} ({percent(top[0]['probability'])})"
    assert page.inner_text("#verdict") == verdict
    assert page.inner_text("#verdict strong") == answer["label"]
    assert shown_bars(page) == [[entry["label"], percent(entry["probability"])] for entry in top]
    numbers = page.eval_on_selector_all(
        "#bars li", "items => items.map(i => [i.dataset.label, Number(i.dataset.probability)])"
    )
    assert numbers == [[entry["label"], entry["probability"]] for entry in top]
    assert page.is_visible("#restoration") and page.is_visible("#probe") and page.is_visible("#preview")
    assert not page.is_visible("#error")


def test_an_uploaded_image_is_shown_seen_masked_and_restored_as_the_server_restores_it(
    project: ServedProject, browser: object
) -> None:
    """A picture from the disk, of another size than the training images, is posted at once with the
    page's default share (75 %) and the first draw; the page shows what /predict answers for the same
    bytes, share and draw."""
    image = shape_png()
    expected = restored(project, "shape.png", image, 0.75, 0)
    assert (expected["hidden_patches"], expected["patches"]) == (48, 64), expected
    labels = [entry["label"] for entry in expected["top"]]
    assert len(labels) == len(set(labels)) == 5, expected  # the five shapes of the data
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Restore the hidden patches of an image"
        assert page.inner_text("#result-heading") == "Restoration"
        assert page.inner_text("#verdict") == "Nothing restored yet."
        assert page.get_attribute("#verdict", "aria-live") == "polite"
        assert not page.is_visible("#restoration") and not page.is_visible("#preview")
        assert page.is_disabled("#another-draw")  # nothing to draw again yet
        assert page.input_value("#hidden-share") == "75" and page.inner_text("#hidden-share-value") == "75%"
        assert_every_control_is_labelled(page)
        page.wait_for_function("() => document.getElementById('served-model').textContent.includes('step')")
        assert page.inner_text("#served-model").startswith("image-pretraining · run first · step ")
        held: list[object] = []
        page.route("**/predict*", lambda route: held.append(route))  # held to see the page wait
        choose_file(page, "shape.png", "image/png", image)
        for _ in range(50):  # the route handler runs while Playwright waits
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        assert page.inner_text("#verdict") == "Restoring\u2026" and not page.is_visible("#restoration")
        assert image in held[0].request.post_data_buffer  # the very bytes
        with page.expect_response("**/predict*") as answer:
            held[0].continue_()
        page.unroute("**/predict*")
        assert answer.value.status == 200 and answer.value.json() == expected
        assert asked(answer.value) == {"mask_ratio": "0.75", "seed": "0"}
        assert_page_shows(page, expected)
        assert page.eval_on_selector("#preview", "i => [i.naturalWidth, i.naturalHeight]") == [96, 80]
        assert page.is_enabled("#another-draw")
        page.wait_for_selector("#examples button img")  # the whole page in the screenshot
        screenshot(page, "pretraining-playground")


def test_the_share_slider_and_another_draw_restore_the_image_again(
    project: ServedProject, browser: object
) -> None:
    """Moving "Patches hidden" to 50 % restores the image with half its patches hidden; "Hide other
    patches" asks for the next draws (1, then 2) at that share; a new image starts from the first
    draw again at the share set."""
    image = shape_png(64, 64)
    with open_playground(browser, project.url) as page:
        with page.expect_response("**/predict*"):
            choose_file(page, "shape.png", "image/png", image)
        assert_page_shows(page, restored(project, "shape.png", image, 0.75, 0))
        half = restored(project, "shape.png", image, 0.5, 0)
        assert (half["hidden_patches"], half["patches"]) == (32, 64), half
        with page.expect_response("**/predict*") as answer:
            page.fill("#hidden-share", "50")  # as a drag of the thumb ends: input, then change
        assert asked(answer.value) == {"mask_ratio": "0.5", "seed": "0"} and answer.value.json() == half
        assert page.inner_text("#hidden-share-value") == "50%"
        assert page.get_attribute("#hidden-share", "aria-valuetext") == "50%"
        assert_page_shows(page, half)
        draws = [half]
        for seed in (1, 2):
            expected = restored(project, "shape.png", image, 0.5, seed)
            assert expected["hidden_patches"] == 32
            with page.expect_response("**/predict*") as answer:
                page.get_by_role("button", name="Hide other patches").click()
            assert asked(answer.value) == {"mask_ratio": "0.5", "seed": str(seed)}
            assert answer.value.json() == expected
            assert_page_shows(page, expected)
            draws.append(expected)
        # Each draw hides other patches of the same image.
        assert len({draw["masked_png"] for draw in draws}) == 3
        assert len({draw["image_png"] for draw in draws}) == 1
        page.wait_for_selector("#examples button img")  # the whole page in the screenshot
        screenshot(page, "pretraining-playground-half-hidden")
        other = resized_png(example_png(page, 1), 48, 48)
        expected = restored(project, "other.png", other, 0.5, 0)
        with page.expect_response("**/predict*") as answer:
            choose_file(page, "other.png", "image/png", other)
        assert asked(answer.value) == {"mask_ratio": "0.5", "seed": "0"}
        assert_page_shows(page, expected)


def test_a_validation_image_is_restored_from_one_click(project: ServedProject, browser: object) -> None:
    offered = examples(project)
    assert len(offered) == 6
    with open_playground(browser, project.url) as page:
        image = example_png(page, 2)
        assert page.locator("#examples img").count() == 6
        assert page.get_attribute("#examples img >> nth=2", "alt") == "Validation image 3"
        assert page.get_attribute("#examples img >> nth=2", "src") == offered[2]
        expected = restored(project, "example-3.png", image, 0.75, 0)
        uploads = record_uploads(page)
        with page.expect_response("**/predict*") as answer:
            page.locator("#examples button").nth(2).click()
        assert answer.value.status == 200 and answer.value.json() == expected
        assert len(uploads) == 1 and image in uploads[0]  # the very bytes of the example
        assert_page_shows(page, expected)
        shown = page.eval_on_selector("#preview", "i => [i.naturalWidth, i.naturalHeight]")
        assert shown == [32, 32]  # the example itself is previewed
        assert page.is_enabled("#another-draw")


def test_a_dropped_image_is_restored(project: ServedProject, browser: object) -> None:
    image = shape_png(40, 40)
    expected = restored(project, "dropped.png", image, 0.75, 0)
    with open_playground(browser, project.url) as page:
        with page.expect_response("**/predict*"):
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
        assert_page_shows(page, expected)


def test_a_file_that_is_not_an_image_shows_the_servers_reason(
    project: ServedProject, browser: object
) -> None:
    """The server's one-line reason replaces the result; the file is forgotten, so the slider and
    "Hide other patches" send nothing more until another image is chosen."""
    status, reason = refused(project, "notes.txt", b"hello")
    assert status == 415
    with open_playground(browser, project.url) as page:
        image = example_png(page, 0)
        with page.expect_response("**/predict*"):
            page.locator("#examples button").first.click()  # a result first: the error must replace it
        assert_page_shows(page, restored(project, "example-1.png", image, 0.75, 0))
        with page.expect_response("**/predict*") as answer:
            choose_file(page, "notes.txt", "text/plain", b"hello")
        assert answer.value.status == 415 and answer.value.json() == {"detail": reason}
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == f"notes.txt: {reason}"
        assert page.get_attribute("#error", "role") == "alert"
        assert page.inner_text("#verdict") == "Nothing restored."
        assert not page.is_visible("#restoration") and not page.is_visible("#preview")
        assert page.locator("#bars li").count() == 0
        screenshot(page, "pretraining-playground-bad-upload")
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        assert page.is_disabled("#another-draw")
        page.fill("#hidden-share", "40")
        page.wait_for_timeout(300)
        assert not [url for url in requests if "/predict" in url]
        expected = restored(project, "example-1.png", image, 0.4, 0)
        with page.expect_response("**/predict*"):
            page.locator("#examples button").first.click()  # the page still works, and the error goes
        assert_page_shows(page, expected)
    assert http(f"{project.url}/health")[0] == 200  # the server lives on


def test_a_file_over_10_mb_is_refused_before_uploading(
    project: ServedProject, browser: object, tmp_path: Path
) -> None:
    """The page refuses what the server would refuse with a 413, without sending it; the image
    shown stays the one the slider and "Hide other patches" restore."""
    status, reason = refused(project, "huge.png", bytes(10 * 2**20 + 1))
    assert status == 413 and "larger than 10 MB" in reason
    with open_playground(browser, project.url) as page:
        assert_a_file_over_10_mb_is_refused_before_uploading(page, tmp_path)
        assert not page.is_visible("#restoration") and page.is_disabled("#another-draw")
        assert page.inner_text("#verdict") == "Nothing restored yet."
        image = example_png(page, 3)
        expected = restored(project, "example-4.png", image, 0.75, 0)
        with page.expect_response("**/predict*"):
            page.locator("#examples button").nth(3).click()
        assert_page_shows(page, expected)
        again = tmp_path / "again.png"
        again.write_bytes(bytes(10 * 2**20 + 1))
        page.set_input_files("#file", again)  # refused again: the restoration and its image stay
        page.wait_for_function("() => document.getElementById('error').textContent.startsWith('again.png')")
        assert page.is_visible("#error") and page.is_visible("#preview") and page.is_visible("#restoration")
        assert page.get_attribute("#masked", "src") == f"data:image/png;base64,{expected['masked_png']}"
        half = restored(project, "example-4.png", image, 0.5, 0)
        uploads = record_uploads(page)
        with page.expect_response("**/predict*") as answer:
            page.fill("#hidden-share", "50")
        assert answer.value.status == 200 and len(uploads) == 1 and image in uploads[0]
        assert_page_shows(page, half)


def test_the_drop_zone_the_slider_and_the_examples_work_from_the_keyboard(
    project: ServedProject, browser: object
) -> None:
    """Space on the focused drop zone opens the file dialog; the arrow keys move the share (each
    step restores again: the last one shown); Enter draws again and picks an example."""
    image = resized_png(example_png_bytes(project, 5), 64, 64)
    with open_playground(browser, project.url) as page:
        page.wait_for_selector("#examples button img")  # all the page's stops are there to tab through
        tab_to(page, "file")
        outline = page.evaluate("getComputedStyle(document.getElementById('drop-zone')).outlineStyle")
        assert outline == "solid"  # the zone shows where the focus is
        expected = restored(project, "keys.png", image, 0.75, 0)
        with page.expect_response("**/predict*"):
            choose_with_space(page, "keys.png", image)
        assert_page_shows(page, expected)
        tab_to(page, "hidden-share", presses=2)  # the next stop after the drop zone
        for _ in range(5):  # 75 % -> 50 %, five steps of 5
            page.keyboard.press("ArrowLeft")
        assert page.input_value("#hidden-share") == "50" and page.inner_text("#hidden-share-value") == "50%"
        assert_page_shows(page, restored(project, "keys.png", image, 0.5, 0))
        tab_to(page, "another-draw", presses=1)
        expected = restored(project, "keys.png", image, 0.5, 1)
        with page.expect_response("**/predict*") as answer:
            page.keyboard.press("Enter")
        assert asked(answer.value) == {"mask_ratio": "0.5", "seed": "1"}
        assert_page_shows(page, expected)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('#examples') !== null")
        page.locator("#examples button").nth(4).focus()
        expected = restored(project, "example-5.png", example_png(page, 4), 0.5, 0)
        with page.expect_response("**/predict*"):
            page.keyboard.press("Enter")  # an example is picked with the keyboard too
        assert_page_shows(page, expected)


def test_a_run_without_labels_shows_the_restoration_alone_and_labels_stay_text(
    project: ServedProject, browser: object
) -> None:
    """A reply without `top` (a run trained on unlabelled images) shows the three panels and no
    probe: neither its heading, bars nor hint. Labels of a model trained on other data are shown
    as text: markup in them becomes no element."""
    with open_playground(browser, project.url) as page:
        image = example_png(page, 0)
        real = restored(project, "example-1.png", image, 0.75, 0)
        markup = "<img src=x onerror=\"document.title='owned'\"> star"
        hostile = {**real, "label": markup, "top": [{"label": markup, "probability": 0.9985}]}
        hostile["top"].append({"label": "<b>circle</b>", "probability": 0.00125})
        title = page.title()
        page.route("**/predict*", lambda route: route.fulfill(json=hostile))
        page.locator("#examples button").first.click()
        assert_page_shows(page, hostile)
        assert shown_bars(page) == [[markup, "99.9%"], ["<b>circle</b>", "0.1%"]]  # the markup as text
        assert page.locator("#verdict img, #verdict b, #bars img, #bars b").count() == 0
        page.unroute("**/predict*")
        unlabelled = {key: value for key, value in real.items() if key not in ("top", "label")}
        page.route("**/predict*", lambda route: route.fulfill(json=unlabelled))
        page.get_by_role("button", name="Hide other patches").click()
        page.wait_for_function("() => document.getElementById('verdict').textContent.startsWith('Restored.')")
        assert page.inner_text("#verdict") == (
            "Restored. The run has no labels, so there is no probe to name what it sees."
        )
        wait_for_panels(page, unlabelled)
        assert page.inner_text("#restoration-stats") == stats_line(unlabelled)
        assert page.is_visible("#restoration") and not page.is_visible("#probe")
        assert not page.is_visible("#bars") and not page.is_visible("#probe-hint")
        assert page.locator("#bars li").count() == 0
        page.unroute("**/predict*")
        assert page.title() == title


def test_the_playground_is_readable_on_a_phone(project: ServedProject, browser: object) -> None:
    """Nothing sticks out sideways on a phone, and the three panels stay side by side, each
    enlarging the model's image."""
    with open_playground(browser, project.url) as page:
        expected = restored(project, "example-2.png", example_png(page, 1), 0.75, 0)
        with page.expect_response("**/predict*"):
            page.locator("#examples button").nth(1).click()
        assert_page_shows(page, expected)
        assert_readable_on_a_phone(page, "pretraining-playground-phone")
        page.set_viewport_size({"width": 390, "height": 844})
        boxes = [page.locator(selector).bounding_box() for selector in PANELS]
        card = page.locator("#result").bounding_box()
        assert len({round(box["y"]) for box in boxes}) == 1  # one row
        assert all(box["width"] >= 2 * expected["image_size"] for box in boxes), boxes
        right = card["x"] + card["width"]
        assert all(card["x"] <= box["x"] and box["x"] + box["width"] <= right for box in boxes), (card, boxes)
        assert_page_shows(page, expected)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_text_is_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the playground (verdict, panel captions, the
    stats line, the probe's bars, hints, the slider's label and value, buttons, error line, drop
    zone) and what is behind it."""
    with open_playground(browser, project.url, scheme) as page:
        with page.expect_response("**/predict*"):
            choose_file(page, "notes.txt", "text/plain", b"hello")
        page.wait_for_selector("#error:not([hidden])")
        checked = shown_colours(page, "#error")
        expected = restored(project, "example-3.png", example_png(page, 2), 0.75, 0)
        with page.expect_response("**/predict*"):
            page.locator("#examples button").nth(2).click()
        assert_page_shows(page, expected)
        checked += colours_of(page, [
            "h1", ".lead", "#drop-zone strong", "#file-hint", "label[for=hidden-share]",
            "#hidden-share-value", "#another-draw", "#draw-hint", "#result-heading", "#verdict",
            "#verdict strong", ".restoration figcaption", "#restoration-stats", "#probe-heading",
            "#bars .label", "#bars .value", "#probe-hint", "#served-model",
        ])  # fmt: skip
        assert_readable(scheme, checked)
        screenshot(page, f"pretraining-playground-{scheme}")


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
            page, project, ["loss", "lr", "samples_per_s", "grad_norm"], ["eval_loss", "accuracy", "macro_f1"]
        )
        screenshot(page, "pretraining-dashboard")
        assert_readable_on_a_phone(page, "pretraining-dashboard-phone")
