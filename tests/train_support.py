"""Helpers shared by the `ccpt train` tests: a throwaway project and a check for leftovers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

FIXTURES = Path(__file__).parent / "train_fixtures"
# ccpt's teardown bound for the default 5 s grace (ccpt.launch.job.TEARDOWN_BOUND_S is 11 s
# for a launcher that gives up on a host; the processes themselves go within grace + 1 s).
TEARDOWN_BOUND_S = 10.0


def make_project(root: Path, entry: str = "tiny_ddp.py", env_file: str = "OMP_NUM_THREADS=1\n") -> Path:
    """A project directory with the fixture scripts, a ccpt.toml naming the entry, and .ccpt_env."""
    root.mkdir(parents=True, exist_ok=True)
    for script in FIXTURES.glob("*.py"):
        shutil.copy(script, root / script.name)
    (root / "ccpt.toml").write_text(f'train_entry = "{entry}"\n')
    (root / ".ccpt_env").write_text(env_file)
    return root


def job_processes(job_id: str) -> list[str]:
    """Every process (`ps`) whose command line or environment carries the job id."""
    me = {os.getpid(), os.getppid()}
    listing = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True).stdout
    found = []
    for line in listing.splitlines():
        pid_text, _, args = line.strip().partition(" ")
        pid = int(pid_text)
        if pid in me or "ps -eww" in args:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            environ = []
        if job_id in args or f"CCPT_JOB_ID={job_id}".encode() in environ:
            found.append(line.strip())
    return found


def wait_until_gone(job_id: str, timeout: float = TEARDOWN_BOUND_S) -> list[str]:
    """Poll until no process of the job is left; return what is left at the deadline."""
    deadline = time.monotonic() + timeout
    left = job_processes(job_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = job_processes(job_id)
    return left


def start_ccpt(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """`ccpt` in its own session (so a signal reaches it alone), output merged into one pipe."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "ccpt", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> str:
    """Read the process's output until a line contains `needle`; return everything read."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return "".join(seen)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"never saw {needle!r}; output was:\n{''.join(seen)}")


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str, float]:
    """SIGINT to ccpt, as Ctrl-C would send; returns its exit code, the rest of its output, seconds."""
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    return proc.returncode, rest, time.monotonic() - started
