"""SSH fan-out: a trivial job's whole life on 16 loopback hosts against one raw `ssh HOST true` round.

A: one raw parallel round, `ssh HOST true` to every host at once (fresh connections).
B: `ccpt train --no-torchrun` of a one-line script on the same hosts: resolve, connect (one
   master per host, bounded window, retry on dropped handshakes), pre-flight probe, launch,
   wait, teardown, close the masters.
Both run against one real sshd with its default MaxStartups (10:30:100), alternating A B A B;
medians, the ratio B / A, and every failed connection are printed.

    python benchmarks/launch_fanout.py [--hosts 16] [--runs 5] [--fanout 8]
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
sys.path.insert(0, str(REPO))

from tests.sshd import LoopbackSshd  # noqa: E402


def raw_round(server: LoopbackSshd) -> tuple[float, int]:
    """All hosts at once, fresh connections; seconds and failed connections."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["ssh", "-F", str(server.client_config), "-o", "BatchMode=yes", host, "true"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for host in server.hosts
    ]
    failed = sum(proc.wait() != 0 for proc in procs)
    return time.perf_counter() - start, failed


def ccpt_job(server: LoopbackSshd, project: Path, fanout: int, run: int) -> tuple[float, int, int]:
    """The whole life of a trivial job; seconds, failed hosts (exit != 0) and handshake retries."""
    job = f"fanout-{run}-{os.getpid()}"
    argv = [str(Path(sys.executable).with_name("ccpt")), "train", "--hosts", ",".join(server.hosts)]
    argv += [
        "--ssh-config",
        str(server.client_config),
        "--no-torchrun",
        "--fanout",
        str(fanout),
        "--job-id",
        job,
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return elapsed, len(server.hosts), 0
    record = json.loads((project / "runs" / job / "ssh.json").read_text())
    return elapsed, 0, record["handshake_retries"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fanout", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, LoopbackSshd(nodes=args.hosts) as server:
        project = Path(tmp)
        (project / "trivial.py").write_text("print('ok')\n")
        (project / "ccpt.toml").write_text('train_entry = "trivial.py"\n')
        raw_round(server)  # warm caches on both sides
        ccpt_job(server, project, args.fanout, -1)
        raw: list[tuple[float, int]] = []
        job: list[tuple[float, int, int]] = []
        for run in range(args.runs):
            raw.append(raw_round(server))
            job.append(ccpt_job(server, project, args.fanout, run))

    raw_s = statistics.median(seconds for seconds, _ in raw)
    job_s = statistics.median(seconds for seconds, _, _ in job)
    result = {
        "hosts": args.hosts,
        "runs": args.runs,
        "fanout": args.fanout,
        "raw_round_s": round(raw_s, 3),
        "raw_failed_connections": sum(failed for _, failed in raw),
        "ccpt_job_s": round(job_s, 3),
        "ccpt_failed_hosts": sum(failed for _, failed, _ in job),
        "ccpt_handshake_retries": sum(retries for _, _, retries in job),
        "ratio": round(job_s / raw_s, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.hosts} loopback hosts, one sshd (MaxStartups default), median of {args.runs}")
    raw_failed, job_failed = result["raw_failed_connections"], result["ccpt_failed_hosts"]
    print(f"  raw parallel round of `ssh HOST true`  {raw_s:6.2f} s   failed connections: {raw_failed}")
    print(f"  ccpt train, trivial job, whole life    {job_s:6.2f} s   failed hosts: {job_failed}", end="")
    print(f"   (handshakes retried: {result['ccpt_handshake_retries']})")
    print(f"ratio ccpt / raw round: {result['ratio']:.2f} (target <= 2, zero failed connections)")


if __name__ == "__main__":
    main()
