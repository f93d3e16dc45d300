"""CLI responsiveness: `ccpt --help` (and friends) against a bare two-command Typer app.

Runs each command alternately (A B A B ...) so machine noise hits both alike, and reports
the median wall time and peak RSS of each, and their ratios to the bare app.

    python benchmarks/cli_startup.py [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_APP = '''
import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    """Say hello."""
    print(f"hello {name}")


@app.command()
def goodbye(name: str) -> None:
    """Say goodbye."""
    print(f"goodbye {name}")


if __name__ == "__main__":
    app()
'''


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one run of argv."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--extra", action="append", default=[], help="another ccpt argument string to time")
    args = parser.parse_args()

    ccpt = str(Path(sys.executable).with_name("ccpt"))
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE_APP)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "bare typer --help": [sys.executable, str(bare), "--help"],
            "ccpt --help": [ccpt, "--help"],
            **{f"ccpt {extra}": [ccpt, *extra.split()] for extra in args.extra},
        }
        for argv in commands.values():  # warm the page cache and .pyc files
            measure(argv)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(measure(argv))

    base_wall = statistics.median(w for w, _ in samples["bare typer --help"])
    base_rss = statistics.median(r for _, r in samples["bare typer --help"])
    rows = []
    for name, runs in samples.items():
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(r for _, r in runs)
        rows.append(
            {
                "command": name,
                "wall_s": round(wall, 3),
                "rss_mib": round(rss, 1),
                "wall_ratio": round(wall / base_wall, 2),
                "rss_ratio": round(rss / base_rss, 2),
            }
        )
    if args.json:
        print(json.dumps({"runs": args.runs, "results": rows}, indent=2))
        return
    print(
        f"{'command':<28} {'wall s':>8} {'x bare':>7} {'RSS MiB':>8} {'x bare':>7}   (median of {args.runs})"
    )
    for row in rows:
        print(
            f"{row['command']:<28} {row['wall_s']:>8.3f} {row['wall_ratio']:>7.2f}"
            f" {row['rss_mib']:>8.1f} {row['rss_ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
