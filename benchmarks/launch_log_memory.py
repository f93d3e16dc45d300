"""The launcher's memory while streaming a job's logs: 1,000 lines against 1,000,000, from 2 hosts.

Two loopback hosts behind a real sshd each print half the lines as fast as they can; ccpt
multiplexes them (prefixes, per-host and per-rank files, the console sent to /dev/null) and its
peak RSS is read from the kernel when it exits (wait4). Flat memory means the big run's peak
stays near the small run's, and under 150 MB. Runs both with torchrun (one process a host, lines
tee'd with rank prefixes) and with --no-torchrun (lines straight from the script).

    python benchmarks/launch_log_memory.py [--lines 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.sshd import LoopbackSshd  # noqa: E402

SPEW = """\
import os, sys
lines = int(sys.argv[1])
rank = os.environ.get("RANK", os.environ.get("CCPT_NODE_RANK", "?"))
write = sys.stdout.write
for i in range(lines):
    write(f"step {i} rank {rank} loss 0.123456 lr 3.0e-04 tokens/s 123456\\n")
"""


def run(server: LoopbackSshd, project: Path, lines: int, torchrun: bool, name: str) -> dict[str, object]:
    argv = [str(Path(sys.executable).with_name("ccpt")), "train", "--hosts", ",".join(server.hosts)]
    argv += ["--ssh-config", str(server.client_config), "--job-id", name, "--nproc-per-node", "1"]
    argv += [] if torchrun else ["--no-torchrun"]
    argv += ["--", str(lines // len(server.hosts))]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stderr is not None
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ccpt failed:\n{proc.stderr.read().decode()[-3000:]}")
    logged = sum(
        sum(1 for line in (project / "runs" / name / f"{host}.log").open("rb") if b" | step " in line)
        for host in server.hosts
    )
    return {
        "mode": "torchrun" if torchrun else "--no-torchrun",
        "lines": lines,
        "logged": logged,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp, LoopbackSshd(nodes=2) as server:
        project = Path(tmp)
        (project / "spew.py").write_text(SPEW)
        (project / "ccpt.toml").write_text('train_entry = "spew.py"\n')
        (project / ".ccpt_env").write_text("OMP_NUM_THREADS=1\n")
        for torchrun in (False, True):
            for lines in (1_000, args.lines):
                rows.append(run(server, project, lines, torchrun, f"mem-{int(torchrun)}-{lines}"))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'mode':<14} {'lines':>10} {'logged':>10} {'wall s':>8} {'peak RSS MiB':>13}")
    for row in rows:
        print(
            f"{row['mode']:<14} {row['lines']:>10,} {row['logged']:>10,} {row['wall_s']:>8.2f}"
            f" {row['peak_rss_mib']:>13.1f}"
        )
    for small, large in zip(rows[::2], rows[1::2], strict=True):
        growth = large["peak_rss_mib"] - small["peak_rss_mib"]  # type: ignore[operator]
        span = f"from 1,000 to {args.lines:,} lines"
        print(f"{small['mode']}: peak RSS grows {growth:+.1f} MiB {span} (limit 150 MB)")


if __name__ == "__main__":
    main()
