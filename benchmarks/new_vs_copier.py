"""`ccpt new` against a bare `copier copy` of the same template, side by side.

Each round runs every command once, in turn (A B C A B C ...), each into a fresh folder, so the
machine's noise hits all alike; the table shows medians and the ratio to bare copier. `ccpt new`
does more than copier: it loads and checks the spec, copies the 15 agent files, writes
specs/task.yaml and, unless --no-git, runs git init, records the pristine render and commits.

    python benchmarks/new_vs_copier.py [--runs 7] [--spec image-classification] [--json]
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

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "scaffolds" / "project"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one run of `argv`; a failure stops the benchmark with its output."""
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{result.stderr}")
    return wall


def commands(spec: str) -> dict[str, list[str]]:
    """The contenders; each gets its destination appended."""
    bindir = Path(sys.executable).parent
    copier = [str(bindir / "copier"), "copy", "--defaults", "--quiet", "--data", "task_kind=" + spec]
    ccpt = [str(bindir / "ccpt"), "new", "--spec", spec, "--defaults"]
    return {
        "copier copy (bare)": [*copier, str(TEMPLATE)],
        "ccpt new --no-git": [*ccpt, "--no-git"],
        "ccpt new (git init, record, commit)": ccpt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--spec", default="image-classification")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    contenders = commands(args.spec)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory(prefix="ccpt-bench-") as scratch:
        root = Path(scratch)
        (root / "gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@localhost\n")
        env = {**os.environ, "GIT_CONFIG_GLOBAL": str(root / "gitconfig"), "NO_COLOR": "1"}
        for round_ in range(args.runs + 1):  # round 0 warms the page cache and .pyc files
            for index, (name, argv) in enumerate(contenders.items()):
                wall = timed([*argv, f"p{round_}_{index}"], root, env)
                if round_:
                    samples[name].append(wall)

    base = statistics.median(samples["copier copy (bare)"])
    rows = [
        {
            "command": name,
            "wall_s": round(statistics.median(runs), 3),
            "ratio": round(statistics.median(runs) / base, 2),
        }
        for name, runs in samples.items()
    ]
    if args.json:
        print(json.dumps({"runs": args.runs, "spec": args.spec, "results": rows}, indent=2))
        return
    print(f"{'command':<38} {'wall s':>8} {'x copier':>9}   (median of {args.runs}, spec {args.spec})")
    for row in rows:
        print(f"{row['command']:<38} {row['wall_s']:>8.3f} {row['ratio']:>9.2f}")


if __name__ == "__main__":
    main()
