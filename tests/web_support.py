"""A rendered, briefly trained project served for real, and headless Chromium to look at its pages.

`served_project` renders a project with the real `ccpt new`, trains it for a few steps with
`python src/runner.py train`, and starts `python src/runner.py serve --port P` in a subprocess,
as its user would. The `browser` fixture (registered in conftest.py) is Debian's /usr/bin/chromium
driven by Playwright (never a downloaded browser), with a fresh profile. Screenshots go to
test-artifacts/web/.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_ccpt
from tests.project_support import TIMED_GATES, verdict

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Nothing may come from the network; one thread each, so the server and trainer share 2 cores well.
PROJECT_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "NO_COLOR": "1",
    "COLUMNS": "200",
    "OMP_NUM_THREADS": "1",
}


@dataclass
class ServedProject:
    root: Path
    url: str
    run_dir: Path

    def records(self, run_dir: Path | None = None) -> list[dict]:
        """The run's metrics.jsonl, as the trainer wrote it."""
        path = (run_dir or self.run_dir) / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def runner(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`python src/runner.py ARGS` in the project, as its user runs it."""
        return subprocess.run(
            [sys.executable, "src/runner.py", *args],
            cwd=self.root,
            env={**os.environ, **PROJECT_ENV},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_runner(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "src/runner.py", *args],
            cwd=self.root,
            env={**os.environ, **PROJECT_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served_project(
    parent: Path, task_kind: str, train_args: list[str], spec: str = ""
) -> Iterator[ServedProject]:
    """Render `task_kind`'s project under `parent` (from the built-in `spec`, by default the one
    named as the kind), train it with `train_args`, and serve it."""
    root = parent / task_kind
    home = {"CCPT_HOME": str(parent / "home")}
    made = run_ccpt("new", str(root), "--spec", spec or task_kind, "--defaults", "--no-git", env=home)
    assert made.returncode == 0, made.stderr
    project = ServedProject(root, "", root)
    trained = project.runner("train", "--run-name", "first", *train_args)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    project.run_dir = root / "runs" / "first"
    port = free_port()
    server = project.start_runner("serve", "--port", str(port))
    project.url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(project.url, server)
        yield project
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_healthy(url: str, server: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}:\n{server.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # not listening, or still loading
            time.sleep(0.2)
    raise AssertionError(f"the server at {url} did not answer /health within {timeout} s")


def http(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
    """GET (or POST `body`) and return the status and the JSON body, 4xx included."""
    request = urllib.request.Request(url, data=body, headers={"content-type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file, and its content type."""
    boundary = "ccpt-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# --- The browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A Playwright browser context on Debian's Chromium with a fresh profile, for one module."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport=LAPTOP
        )
        try:
            yield context
        finally:
            context.close()


class PageErrors:
    """Script errors and failed requests other than the 4xx a test provokes on purpose."""

    def __init__(self, page: object):
        self.messages: list[str] = []
        page.on("pageerror", lambda error: self.messages.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.messages.append(f"console: {message.text}")
                if message.type == "error" and "status of 4" not in message.text
                else None
            ),
        )


@contextmanager
def open_page(context: object, url: str) -> Iterator[tuple[object, PageErrors]]:
    """A new tab at `url`; on leaving, the page must have raised no script error."""
    page = context.new_page()
    errors = PageErrors(page)
    try:
        page.goto(url)
        yield page, errors
        assert not errors.messages, errors.messages
    finally:
        page.close()


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_readable_on_a_phone(page: object, name: str) -> None:
    """At a phone's width nothing sticks out sideways (no horizontal scrolling), and a screenshot."""
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)  # the charts redraw at the new width
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} is {overflow}px wider than a {PHONE['width']}px phone screen"
    screenshot(page, name)
    page.set_viewport_size(LAPTOP)


def tab_to(page: object, element_id: str, presses: int = 20) -> None:
    """Press Tab until the element `element_id` has the focus, as a keyboard user gets there."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


def choose_with_space(page: object, name: str, data: bytes) -> None:
    """Press Space on the focused file input, as a keyboard user opens the file chooser, and
    choose the PNG `data` as `name` in it. Chromium at times drops the DevTools event of an opened
    chooser on a loaded machine (microsoft/playwright#28023), so a press that opens none within
    10 s is made once more; an input that ignores the key fails both presses."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(2):
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Space")
            break
        except PlaywrightTimeout:
            if attempt:
                raise
    chooser.value.set_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])


def assert_every_control_is_labelled(page: object) -> None:
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, textarea, select')]
             .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id)"""
    )
    assert unlabelled == []


# --- Reading what the dashboard drew -------------------------------------------------------


def path_points(d: str) -> list[tuple[float, float]]:
    """The (x, y) points of an SVG path made of M and L commands."""
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]


def drawn_series(page: object, key: str) -> dict:
    """The path of the series `key` in the dashboard: its data-points and the points of its d."""
    return page.eval_on_selector(
        f'path.series[data-series="{key}"]',
        "path => ({count: Number(path.dataset.points), d: path.getAttribute('d')})",
    )


def assert_curve_follows(page: object, key: str, steps: list[int], values: list[float]) -> None:
    """The series `key` is drawn with one point per record, each where its step and value put it:
    x and y are the same linear functions of step and value for every point (up to rounding),
    with larger values higher up."""
    drawn = drawn_series(page, key)
    points = path_points(drawn["d"])
    assert drawn["count"] == len(points) == len(values), (key, drawn["count"], len(points), len(values))
    assert_linear([x for x, _ in points], steps, increasing=True)
    assert_linear([y for _, y in points], values, increasing=False)


def assert_linear(coordinates: list[float], data: list[float], increasing: bool) -> None:
    """coordinates[i] == a + b * data[i] for one a and b (b > 0 if `increasing`), within 0.5 px."""
    low, high = data.index(min(data)), data.index(max(data))
    if data[low] == data[high]:
        assert max(coordinates) - min(coordinates) < 0.5
        return
    scale = (coordinates[high] - coordinates[low]) / (data[high] - data[low])
    assert (scale > 0) == increasing, (coordinates, data)
    for coordinate, value in zip(coordinates, data, strict=True):
        assert abs(coordinates[low] + (value - data[low]) * scale - coordinate) < 0.5, (coordinates, data)


def markers(page: object, key: str) -> list[list[float]]:
    """[step, value] of each marker (evaluation point) drawn for the series `key`."""
    return page.eval_on_selector_all(
        f'g.markers[data-series="{key}"] circle',
        "dots => dots.map(d => [Number(d.dataset.step), Number(d.dataset.value)])",
    )


def assert_dashboard_shows_run(
    page: object, project: ServedProject, train_metrics: list[str], eval_metrics: list[str]
) -> None:
    """The open dashboard draws every record of the project's run as metrics.jsonl holds it, and its
    acceptance table says what `runner.py check --json` says."""
    records = project.records()
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    page.wait_for_selector(f'path.series[data-series="{eval_metrics[-1]}"]')
    for metric, rows in [(m, train) for m in train_metrics] + [(m, evals) for m in eval_metrics]:
        assert_curve_follows(page, metric, [r["step"] for r in rows], [r[metric] for r in rows])
    for metric in eval_metrics:
        assert markers(page, metric) == [[r["step"], r[metric]] for r in evals]
    assert page.inner_text("#run-status") == "finished"
    assert_saved_model_card(page, project, records)
    page.wait_for_selector("#gates tbody tr")
    # The server measures the gates once per version of the run and keeps them, so asking again
    # gives the very figures the page drew, timed ones included.
    status, served = http(f"{project.url}/api/check?run={project.run_dir.name}")
    assert status == 200 and served["gates"]
    assert gates_shown(page) == [gate_row(gate) for gate in served["gates"]]
    # The CLI measures with the same code, but times predictions anew: a timed gate near its
    # threshold may pass in one measurement and fail in the other. Each side's timed verdict must
    # follow from its own figure; everything else must agree exactly.
    checked = json.loads(project.runner("check", "--run", project.run_dir.name, "--json").stdout)
    for gate in served["gates"] + checked:
        if gate["metric"] in TIMED_GATES:
            assert gate["status"] == verdict(gate), gate
    assert [untimed(gate_row(gate)) for gate in served["gates"]] == [untimed(gate_row(g)) for g in checked]


def assert_saved_model_card(page: object, project: ServedProject, records: list[dict]) -> None:
    """The summary names the model the run saved (the last evaluation marked best, the one `serve`
    loads) and its figure on the metric that chose it, as the final record measured it."""
    status, run = http(f"{project.url}/api/runs/{project.run_dir.name}")
    assert status == 200
    monitor = run["monitor"]
    final = next(r for r in reversed(records) if r["kind"] == "final")
    chosen = [r for r in records if r["kind"] == "eval" and r.get("best")][-1]
    cards = page.eval_on_selector_all(
        "#summary > div",
        "groups => groups.map(g => [g.querySelector('dt').textContent, g.querySelector('dd').textContent])",
    )
    (card,) = [(term, value) for term, value in cards if term.startswith("Saved model (step ")]
    assert card[0] == f"Saved model (step {chosen['step']})", cards
    figure = card[1].rsplit(" ", 1)[1]  # "mIoU 0.532"
    # Three significant digits, or two in exponent form below 0.01 (with a true minus sign).
    shown = float(figure.replace("\u2212", "-").replace(",", ""))
    assert shown == pytest.approx(final[monitor], rel=0.05), cards


def gate_row(gate: dict) -> list[str]:
    """(metric, result, must be, measured) of a gate as `check --json` gives it, in the words
    of the dashboard's acceptance table."""
    must_be = f"{'not ' if gate['section'] == 'penalties' else ''}{gate['op']} {gate['target_text']}"
    measured = gate["observed_text"] or "\u2013"  # the page's dash for a gate it could not measure
    return [gate["metric"], gate["status"], must_be, measured]


def untimed(row: list[str]) -> list[str]:
    """A gate row without what a second timing may change: a timed gate's figure and verdict."""
    return [row[0], "timed", row[2], "timed"] if row[0] in TIMED_GATES else row


def gates_shown(page: object) -> list[list[str]]:
    """(metric, result, must be, measured) of each row of the dashboard's acceptance table."""
    return page.eval_on_selector_all(
        "#gates tbody tr",
        "rows => rows.map(r => [r.dataset.metric, r.dataset.status,"
        " r.cells[2].textContent, r.cells[3].textContent])",
    )


# Colours as the browser computes them, and WCAG contrast between two of them.


def hex_to_rgb(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def rgba(css: str) -> tuple[float, float, float, float]:
    """A computed colour, rgb(...), rgba(...) or color(srgb ...), as 0-1 red, green, blue, alpha."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    if css.startswith("color("):
        return (*numbers[:3], numbers[3] if len(numbers) > 3 else 1.0)
    return (*(n / 255 for n in numbers[:3]), numbers[3] if len(numbers) > 3 else 1.0)


def over(top: tuple[float, ...], below: tuple[float, ...]) -> tuple[float, ...]:
    alpha = top[3]
    return (*(t * alpha + b * (1 - alpha) for t, b in zip(top[:3], below[:3], strict=True)), 1.0)


def contrast(first: tuple[float, ...], second: tuple[float, ...]) -> float:
    def luminance(colour: tuple[float, ...]) -> float:
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour[:3]]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted([luminance(first), luminance(second)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def shown_colours(page: object, selector: str) -> list[tuple[str, str, list[str]]]:
    """[the element's id (else class, else tag), its text colour, the background colours from it up to
    <html>] of each element that matches `selector`."""
    return page.eval_on_selector_all(
        selector,
        """elements => elements.map(e => {
             const backgrounds = [];
             for (let node = e; node; node = node.parentElement) {
               backgrounds.push(getComputedStyle(node).backgroundColor);
             }
             return [e.id || e.className || e.tagName, getComputedStyle(e).color, backgrounds];
           })""",
    )


def colours_of(page: object, selectors: list[str]) -> list[tuple[str, str, list[str]]]:
    """shown_colours of each selector, every one of which must match something on the page."""
    found: list[tuple[str, str, list[str]]] = []
    for selector in selectors:
        shown = shown_colours(page, selector)
        assert shown, selector
        found += shown
    return found


def assert_readable(scheme: str, shown: list[tuple[str, str, list[str]]]) -> None:
    """Each element's text against its backgrounds laid over the white canvas under <html>: at
    least WCAG AA's 4.5:1."""
    for name, text, backgrounds in shown:
        behind = (1.0, 1.0, 1.0, 1.0)
        for background in reversed(backgrounds):
            behind = over(rgba(background), behind)
        assert contrast(rgba(text), behind) >= 4.5, (scheme, name, text, backgrounds)


@contextmanager
def open_playground(context: object, url: str, scheme: str = "light") -> Iterator[object]:
    """The playground in a new tab, watched from its first request: on leaving, no script or
    console error, and no request of the page answered 404 (a missing script or stylesheet)."""
    page = context.new_page()
    page.emulate_media(color_scheme=scheme)
    errors = PageErrors(page)
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    try:
        page.goto(url + "/")
        yield page
        assert not errors.messages, errors.messages
        assert not missing, missing
    finally:
        page.close()


# --- Pages that post an image to /predict (image classification, segmentation, detection) ---------


def predicted_upload(url: str, name: str, data: bytes) -> dict:
    """What POST /predict answers for these file bytes: what the page must then show."""
    status, answer = http(f"{url}/predict", *multipart("file", name, data))
    assert status == 200, answer
    return answer


def example_png(page: object, index: int = 0) -> bytes:
    """The bytes of the page's validation image `index`, as its button posts them."""
    page.wait_for_selector("#examples button img")
    source = page.locator("#examples img").nth(index).get_attribute("src")
    assert source.startswith("data:image/png;base64,")
    return base64.b64decode(source.split(",", 1)[1])


def png_bytes(image: object) -> bytes:
    """A PIL image as PNG file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def choose_file(page: object, name: str, mime: str, data: bytes) -> None:
    """Pick a file in the page's file input, as the file dialog would."""
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])


def assert_a_file_over_10_mb_is_refused_before_uploading(page: object, folder: Path) -> None:
    """The page names the file and the limit, and posts nothing."""
    huge = folder / "huge.png"
    huge.write_bytes(bytes(10 * 2**20 + 1))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_input_files("#file", huge)
    page.wait_for_selector("#error:not([hidden])")
    assert "huge.png is 10.0 MB; the limit is 10 MB." in page.inner_text("#error")
    assert not [url for url in requests if "/predict" in url]
    assert not page.is_visible("#preview")


def to_fixed(value: float, places: int) -> str:
    """`value` as JavaScript's `value.toFixed(places)` writes it: rounded on the float's exact value,
    halves away from zero (Python's format rounds halves to even), and -0 as 0."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(value + 0.0).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
