"""How long `python src/runner.py predict INPUT` takes in a generated project, against the same
command in a project rendered from an earlier template (a git revision), side by side.

Each kind is rendered twice (this checkout's template and --base's), trained for a few steps, and
then `predict` runs alternately in the two (A B A B ...) so machine noise hits both alike. Most of
a prediction's time on a CPU is start-up (imports, loading the model), which is what this
measures; `python -c "import torch"` is printed beside as the floor every project pays.

    python benchmarks/predict_startup.py --base 088c5fd [--kinds image-classification ...] [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from new_vs_copier import timed as run  # this folder is on sys.path when a benchmark runs

REPO = Path(__file__).resolve().parent.parent
SPECS = {  # kind -> the built-in spec that renders it, and what `predict` is given
    "image-classification": ("image-classification", "image"),
    "text-classification": ("text-classification", "Return the sum of the numbers in the list."),
    "token-classification": ("named-entity-recognition", "Started lisinopril 10 mg daily for hypertension."),
    "question-answering": ("question-answering", "How long is the warranty of the Solace S78 label printer?"),
}


def checkout(revision: str, folder: Path) -> Path:
    """The ccpt package and template of `revision`, unpacked into `folder`."""
    archive = subprocess.run(
        ["git", "archive", revision, "cli", "scaffolds", "agent_specs"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def render(source: Path, kind: str, folder: Path, sample: Path) -> tuple[Path, list[str]]:
    """A project of `kind` rendered by the ccpt in `source`, trained for 5 steps, and its predict argv."""
    spec, given = SPECS[kind]
    env = {**os.environ, "PYTHONPATH": str(source / "cli")}
    run(
        [sys.executable, "-m", "ccpt", "new", str(folder), "--spec", spec, "--defaults", "--no-git"],
        REPO,
        env,
    )
    run([sys.executable, "src/runner.py", "train", "--max-steps", "5", "--run", "bench"], folder, env)
    return folder, [
        sys.executable,
        "src/runner.py",
        "predict",
        "--run",
        "bench",
        str(sample) if given == "image" else given,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="git revision whose template is the baseline")
    parser.add_argument("--kinds", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        sample = root / "sample.png"
        Image.new("RGB", (64, 64), (200, 30, 30)).save(sample)
        base = checkout(args.base, root / "base")
        env = {**os.environ, "COLUMNS": "120"}
        floor = [run([sys.executable, "-c", "import torch"], root, env) for _ in range(args.runs)]
        for kind in args.kinds:
            old, old_argv = render(base, kind, root / f"{kind}-base", sample)
            new, new_argv = render(REPO, kind, root / f"{kind}-now", sample)
            times: dict[str, list[float]] = {"base": [], "now": []}
            for _ in range(args.runs):
                times["base"].append(run(old_argv, old, env))
                times["now"].append(run(new_argv, new, env))
            base_s, now_s = statistics.median(times["base"]), statistics.median(times["now"])
            rows.append({"kind": kind, "base_s": base_s, "now_s": now_s, "ratio": now_s / base_s})
    result = {"base": args.base, "runs": args.runs, "import_torch_s": statistics.median(floor), "kinds": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"`python -c 'import torch'`: {result['import_torch_s']:.2f} s (median of {args.runs})")
    print(f"{'kind':<24} {args.base:>10} {'now':>8} {'now/base':>9}")
    for row in rows:
        print(f"{row['kind']:<24} {row['base_s']:>9.2f}s {row['now_s']:>7.2f}s {row['ratio']:>8.2f}x")


if __name__ == "__main__":
    main()
