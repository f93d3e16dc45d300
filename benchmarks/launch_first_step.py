"""Time to the first training step: `ccpt train` against a hand-written torchrun line.

Both start the same job and are timed from launch until the first training-step line reaches
their stdout; runs alternate (A B A B ...) so machine noise hits both alike; medians and the
ratio are printed. Default job: the tiny DDP model of tests/train_fixtures on 2 gloo processes.

    python benchmarks/launch_first_step.py [--runs 5] [--nproc 2]
    python benchmarks/launch_first_step.py --project DIR --needle "step 1 " -- --max-steps 5

With --project, the entry is the project's `train_entry` (e.g. `src/runner.py train`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "train_fixtures" / "tiny_ddp.py"


def timed_run(argv: list[str], cwd: Path, env: dict[str, str], needle: str) -> tuple[float, float]:
    """Seconds until a stdout line contains `needle`, and until the process exits (it must exit 0)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    first = None
    tail: list[str] = []
    for line in proc.stdout:
        if first is None and needle in line:
            first = time.perf_counter() - start
        tail = [*tail[-30:], line]
    code = proc.wait()
    total = time.perf_counter() - start
    if code != 0 or first is None:
        raise SystemExit(
            f"{shlex.join(argv)} exited {code} (needle seen: {first is not None}):\n{''.join(tail)}"
        )
    return first, total


def entry_of(project: Path) -> list[str]:
    sys.path.insert(0, str(REPO / "cli"))
    from ccpt.config import resolve_settings

    return shlex.split(resolve_settings(cwd=project).train_entry)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument(
        "--project", type=Path, help="a project with [tool.ccpt] train_entry (default: tiny DDP)"
    )
    parser.add_argument("--needle", default="step 1 loss", help="text of the first training-step line")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("script_args", nargs="*", help="arguments for the training script (after --)")
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    # Installed console scripts when present; else the modules (a GPU box running from the tree).
    ccpt = [str(bin_dir / "ccpt")] if (bin_dir / "ccpt").exists() else [sys.executable, "-m", "ccpt"]
    torchrun = [str(bin_dir / "torchrun")]
    if not (bin_dir / "torchrun").exists():
        torchrun = [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    if not shutil.which("nvidia-smi"):
        env["OMP_NUM_THREADS"] = "1"  # CPU: one thread per process on a small machine
    with tempfile.TemporaryDirectory() as tmp:
        if args.project:
            project, entry = args.project.resolve(), entry_of(args.project.resolve())
            script_args = args.script_args
        else:
            project = Path(tmp)
            shutil.copy(FIXTURE, project / FIXTURE.name)
            (project / "ccpt.toml").write_text(f'train_entry = "{FIXTURE.name}"\nrun_dir = "{tmp}/runs"\n')
            entry, script_args = [FIXTURE.name], args.script_args or ["--max-steps", "3"]
        hand_written = [*torchrun, "--standalone", "--nproc-per-node", str(args.nproc), *entry, *script_args]
        commands = {
            "hand-written torchrun": hand_written,
            "ccpt train": [*ccpt, "train", "--nproc-per-node", str(args.nproc), "--", *script_args],
        }
        for argv in commands.values():  # warm the page cache and .pyc files
            timed_run(argv, project, env, args.needle)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(timed_run(argv, project, env, args.needle))

    rows = {
        name: {
            "first_step_s": round(statistics.median(first for first, _ in runs), 3),
            "total_s": round(statistics.median(total for _, total in runs), 3),
            "command": shlex.join(commands[name]),
        }
        for name, runs in samples.items()
    }
    ratio = rows["ccpt train"]["first_step_s"] / rows["hand-written torchrun"]["first_step_s"]
    if args.json:
        print(
            json.dumps(
                {"runs": args.runs, "nproc": args.nproc, "results": rows, "ratio": round(ratio, 3)}, indent=2
            )
        )
        return
    header = f"{'launcher':<24} {'first step s':>12} {'whole run s':>12}"
    print(f"{header}   (median of {args.runs}, {args.nproc} procs)")
    for name, row in rows.items():
        print(f"{name:<24} {row['first_step_s']:>12.2f} {row['total_s']:>12.2f}")
    print(f"ratio ccpt / torchrun, time to first step: {ratio:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
