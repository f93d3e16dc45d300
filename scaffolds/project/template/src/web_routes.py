"""The project's web pages: a playground for the served model at `/`, a training dashboard at `/runs`.

The pages are static files in src/web/ (plain HTML, CSS and JavaScript: no build step, nothing
loaded from other sites). They call the API that server.py already has (/health, /predict) and
the read-only routes added here:

  GET /api/runs                the runs beside the served one, newest first, with their status
  GET /api/runs/{name}         a run's metrics.jsonl records (?offset=BYTES: only the newer ones)
                               and the metric that chooses its saved model
  GET /api/check?run=NAME      the task spec's acceptance gates on a finished run, as
                               `runner.py check --json` gives them (the same code measures them)
  GET /api/examples            a few validation inputs to try in the playground
  POST /api/generate           (causal-lm) a prompt's continuation, streamed as JSON lines

The dashboard follows a run while it trains: the trainer appends one JSON line per log step and
flushes it, and the page asks for the lines after the last byte it has already seen.
"""

import base64
import io
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from config import SPEC_PATH, TASK_KIND, ProjectError
from metrics import MONITOR

WEB_DIR = Path(__file__).resolve().parent / "web"
# The pages load scripts, styles and images from this server only; uploads are shown as blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# A run whose metrics.jsonl changed this recently, and that has no final record, counts as training.
ACTIVE_SECONDS = 120
EXAMPLE_COUNT = 6
TAIL_BYTES = 16_384  # enough of a metrics.jsonl's end to hold its last record


def add_web_routes(app: FastAPI, run_dir: Path) -> None:
    """Add the pages and their API to `app`, the server of the run in `run_dir`.

    The dashboard lists every run in the same runs directory, so a run started after the
    server shows up there while it trains.
    """
    runs = RunsDirectory(run_dir.parent, served=run_dir.resolve())
    gates = GateCache()
    examples: list[object] = []
    examples_lock = threading.Lock()

    def page(name: str) -> FileResponse:
        return FileResponse(WEB_DIR / name, media_type="text/html", headers=SECURITY_HEADERS)

    @app.get("/", include_in_schema=False)
    def playground() -> FileResponse:
        return page("playground.html")

    @app.get("/runs", include_in_schema=False)
    def dashboard() -> FileResponse:
        return page("runs.html")

    @app.get("/api/runs")
    def list_runs() -> JSONResponse:
        listing = runs.summaries()
        return finite_json({"task": TASK_KIND, "served": run_dir.name, "runs": listing})

    @app.get("/api/runs/{name}")
    def run_records(
        name: str, offset: int = Query(0, ge=0, description="first byte to read")
    ) -> JSONResponse:
        path = runs.find(name)
        records, start, end = read_new_records(path / "metrics.jsonl", offset)
        config = read_config(path)
        body = {"config": config, "records": records, "start": start, "offset": end, "monitor": MONITOR}
        return finite_json({**runs.summary(path), **body})

    @app.get("/api/check")
    def check(run: str = Query("", description="run name (default: the served run)")) -> JSONResponse:
        path = runs.find(run or run_dir.name)
        try:
            judged = gates.judge(path)
        except ProjectError as error:  # no spec, a malformed spec, or a run that has not finished
            raise HTTPException(409, str(error)) from None
        except (OSError, ValueError, KeyError) as error:  # a damaged run directory
            detail = f"cannot judge run {path.name}: its files are incomplete or damaged ({error})"
            raise HTTPException(409, detail) from None
        passed = all(gate["status"] != "fail" for gate in judged)
        return finite_json({"run": path.name, "spec": SPEC_PATH.name, "passed": passed, "gates": judged})

    @app.get("/api/examples")
    def sample_examples() -> JSONResponse:
        with examples_lock:  # built once: it loads the validation split
            if not examples:
                examples.extend(as_example(item) for item in app.state.predictor.sample_inputs(EXAMPLE_COUNT))
        return JSONResponse({"task": TASK_KIND, "examples": examples})

    if TASK_KIND == "causal-lm":
        add_generation_stream(app)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="web")


def add_generation_stream(app: FastAPI) -> None:
    """POST /api/generate: the playground's streamed generation, one JSON line per new piece of text."""
    # Imported here, not at the top: server.py imports this module. (And this module does not
    # postpone annotations, so FastAPI sees the class itself in the signature below.)
    from server import GenerateRequest

    @app.post("/api/generate")
    def generate(request: GenerateRequest) -> StreamingResponse:
        options = {"max_new_tokens": request.max_new_tokens, "temperature": request.temperature}
        pieces = app.state.predictor.stream(request.prompt, top_k=request.top_k, **options)
        return StreamingResponse(json_lines(pieces), media_type="application/x-ndjson")


def json_lines(pieces: Iterator[str]) -> Iterator[str]:
    """{"text": piece} per piece of text as it is sampled, then
    {"done": true, "characters": n, "seconds": s}."""
    start, characters = time.perf_counter(), 0
    for piece in pieces:
        characters += len(piece)
        yield json.dumps({"text": piece}) + "\n"
    seconds = round(time.perf_counter() - start, 4)
    yield json.dumps({"done": True, "characters": characters, "seconds": seconds}) + "\n"


# --- Runs and their records ----------------------------------------------------------------


class RunsDirectory:
    """The run directories (those holding a config.json) under one runs directory."""

    def __init__(self, root: Path, served: Path):
        self.root = root
        self.served = served

    def paths(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = [d for d in self.root.iterdir() if (d / "config.json").is_file()]
        return sorted(found, key=last_modified, reverse=True)

    def find(self, name: str) -> Path:
        """The run called `name`; only names listed here are served, never arbitrary paths."""
        for path in self.paths():
            if path.name == name:
                return path
        raise HTTPException(404, f"no run named {name!r} in {self.root.name}/")

    def summaries(self) -> list[dict[str, object]]:
        return [self.summary(path) for path in self.paths()]

    def summary(self, path: Path) -> dict[str, object]:
        last = last_record(path / "metrics.jsonl")
        if last is None:
            status = "starting"
        elif last.get("kind") == "final":
            status = "finished"
        elif time.time() - last_modified(path) < ACTIVE_SECONDS:
            status = "training"
        else:
            status = "stopped"
        return {
            "name": path.name,
            "status": status,
            "step": last.get("step", 0) if last else 0,
            "modified": last_modified(path),
            "served": path.resolve() == self.served,
        }


def read_config(run_dir: Path) -> dict:
    """A run's config.json, or {} when it cannot be read (the dashboard still shows the curves)."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def last_modified(run_dir: Path) -> float:
    """When the run last wrote a record (or was created); 0 for a run deleted meanwhile."""
    for name in ("metrics.jsonl", "config.json"):
        try:
            return (run_dir / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


def read_new_records(path: Path, offset: int) -> tuple[list[dict], int, int]:
    """The complete records after byte `offset`: (records, where they start, where the next call
    should start).

    A line still being written (no newline yet) is left for the next call. An offset past the
    end (the file was replaced) starts again from the beginning.
    """
    if not path.exists():
        return [], 0, 0
    with path.open("rb") as file:
        size = file.seek(0, io.SEEK_END)
        file.seek(offset if offset <= size else 0)
        start = file.tell()
        chunk = file.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    records = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a damaged line should not hide the rest of the run
        if isinstance(record, dict):
            records.append(record)
    return records, start, start + len(complete)


def last_record(path: Path) -> dict | None:
    """The last complete record of a metrics.jsonl (reading only its end)."""
    if not path.exists():
        return None
    with path.open("rb") as file:
        size = file.seek(0, io.SEEK_END)
        file.seek(max(0, size - TAIL_BYTES))
        tail = file.read()
    for line in reversed(tail.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return None


class GateCache:
    """Acceptance results per run, measured again only when the run's metrics or the spec change
    (measuring times predictions, which is too slow to repeat on every page refresh)."""

    def __init__(self) -> None:
        self.results: dict[Path, tuple[tuple[int, int], list[dict]]] = {}  # run -> (versions, gates)
        self.lock = threading.Lock()

    def judge(self, run_dir: Path) -> list[dict]:
        from acceptance import check_run

        metrics = run_dir / "metrics.jsonl"
        versions = (
            metrics.stat().st_mtime_ns if metrics.exists() else 0,
            SPEC_PATH.stat().st_mtime_ns if SPEC_PATH.exists() else 0,
        )
        with self.lock:
            cached = self.results.get(run_dir)
            if cached is None or cached[0] != versions:
                cached = (versions, [gate.as_dict() for gate in check_run(run_dir, SPEC_PATH)])
                self.results[run_dir] = cached
            return cached[1]


# --- JSON ----------------------------------------------------------------------------------


def finite_json(content: object) -> JSONResponse:
    """A JSON response in which NaN and infinity (a diverged loss) become null: browsers' JSON
    parsers reject them."""
    return JSONResponse(content=without_non_finite(content))


def without_non_finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: without_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_non_finite(item) for item in value]
    return value


def as_example(item: object) -> object:
    """A validation input as the playground shows it: text as it is, an image as a PNG data URL, a
    chart and its question (visual-question-answering) as {"image": data URL, "question": text}, an
    invoice (document-understanding) as {"name", "pages": [{"words", "boxes"}]}."""
    if isinstance(item, str):
        return item
    if hasattr(item, "question"):  # predictor.ChartQuestion (the other kinds' modules have no such class)
        return {"image": as_example(item.image), "question": item.question}
    if hasattr(item, "as_json"):  # an input that says how it is sent (data.Invoice)
        return item.as_json()
    buffer = io.BytesIO()
    item.save(buffer, format="PNG")  # a PIL image
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
