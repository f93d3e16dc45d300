"""What following a long training run costs the generated project's dashboard.

A project is rendered with `ccpt new`, trained for a few steps, and served with
`python src/runner.py serve`. Beside its run, a long run is written in the trainer's
metrics.jsonl format (one training record per step, an evaluation every 100). Then, side by
side (A B C A B C ..., medians):

  A  GET /api/runs/long             every record: what a dashboard re-reading the file would fetch
  B  GET /api/runs/long?offset=N    the records after byte N: what the dashboard fetches each poll
  C  GET /api/runs                  the run list, which the dashboard also polls

and, in headless Chromium, the time from opening /runs?run=long to its charts being drawn, with
how many points the loss path holds once thinned to the chart's width.

    python benchmarks/web_dashboard.py [--records 100000] [--runs 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.web_support import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PROJECT_ENV, free_port  # noqa: E402


def long_run(records: int) -> str:
    """metrics.jsonl text of a run of `records` steps, as the trainer writes it."""
    rng = random.Random(0)
    lines, start = [], 1_800_000_000.0
    for step in range(1, records + 1):
        loss = 2.3 * math.exp(-step / (records / 4)) + 0.1 + rng.random() * 0.05
        lr = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / records))
        record = {
            "kind": "train",
            "time": start + step * 0.05,
            "step": step,
            "epoch": step // 1000,
            "loss": loss,
            "lr": lr,
            "grad_norm": 0.5 + rng.random(),
            "samples_per_s": 2000 + rng.random() * 300,
            "elapsed_s": step * 0.05,
        }
        lines.append(json.dumps(record))
        if step % 100 == 0:
            lines.append(
                json.dumps(
                    {
                        "kind": "eval",
                        "time": start + step * 0.05,
                        "step": step,
                        "epoch": step // 1000,
                        "best": True,
                        "eval_loss": loss + 0.05,
                        "accuracy": 1 - loss / 2.5,
                        "macro_f1": 1 - loss / 2.4,
                    }
                )
            )
    return "\n".join(lines) + "\n"


def fetch(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - start, size


def first_draw(url: str) -> tuple[float, int]:
    """Seconds from opening the dashboard to its loss curve being drawn, and that path's points."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport=LAPTOP
        )
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector('path.series[data-series="accuracy"]', timeout=300_000)
        wall = time.perf_counter() - start
        points = int(page.get_attribute('path.series[data-series="loss"]', "data-points"))
        context.close()
    return wall, points


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000, help="training steps of the long run")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    env = {**os.environ, **PROJECT_ENV}
    with tempfile.TemporaryDirectory(prefix="ccpt-bench-web-") as scratch:
        project = Path(scratch) / "demo"
        subprocess.run(
            [sys.executable, "-m", "ccpt", "new", str(project), "--defaults", "--no-git"],
            env={**env, "CCPT_HOME": scratch},
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                sys.executable,
                "src/runner.py",
                "train",
                "--run-name",
                "first",
                "--max-steps",
                "5",
                "--set",
                "eval_every=5",
            ],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )
        long_dir = project / "runs" / "long"
        long_dir.mkdir()
        shutil.copy(project / "runs" / "first" / "config.json", long_dir)
        metrics = long_dir / "metrics.jsonl"
        metrics.write_text(long_run(args.records))
        last_line = metrics.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        offset = metrics.stat().st_size - len(last_line) - 1

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "src/runner.py", "serve", "--run", "first", "--port", str(port)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    fetch(base + "/health")
                    break
                except OSError:
                    time.sleep(0.2)
            contenders = {
                "GET /api/runs/long (every record)": base + "/api/runs/long",
                "GET /api/runs/long?offset=N (the newest record)": f"{base}/api/runs/long?offset={offset}",
                "GET /api/runs (the run list)": base + "/api/runs",
            }
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            sizes: dict[str, int] = {}
            for _ in range(args.runs):
                for name, url in contenders.items():
                    wall, sizes[name] = fetch(url)
                    samples[name].append(wall)
            draw_s, drawn_points = first_draw(base + "/runs?run=long")
        finally:
            server.terminate()
            server.wait(timeout=30)

    baseline = statistics.median(samples[next(iter(contenders))])
    rows = [
        {
            "request": name,
            "median_s": statistics.median(values),
            "x_full": statistics.median(values) / baseline,
            "bytes": sizes[name],
        }
        for name, values in samples.items()
    ]
    result = {
        "records": args.records,
        "runs": args.runs,
        "http": rows,
        "browser_first_draw_s": draw_s,
        "loss_points_drawn": drawn_points,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"long run: {args.records:,} training records; {args.runs} alternating rounds, medians")
    print(f"{'request':<50} {'median s':>9} {'x full':>7} {'bytes':>11}")
    for row in rows:
        print(f"{row['request']:<50} {row['median_s']:>9.4f} {row['x_full']:>7.3f} {row['bytes']:>11,}")
    print(f"Chromium: /runs?run=long drawn in {draw_s:.2f} s; the loss path holds {drawn_points:,} points")


if __name__ == "__main__":
    main()
