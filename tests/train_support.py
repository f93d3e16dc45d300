"""Helpers shared by the `ccpt train` tests: a throwaway project and a check for leftovers."""

from __future__ import annotations

import itertools
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


def _processes() -> list[tuple[int, list[str], list[bytes]]]:
    """(pid, argv, environment) of every process but this one and its parent."""
    me = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if argv:
            found.append((int(entry.name), argv, environ))
    return found


def _names_job(argv: list[str], job_id: str) -> bool:
    """Whether the command line says `--job ID` or `--job-id ID` (also inside an ssh remote command).

    An exact word, not a substring: a job id such as "fails" may well occur in the command line
    of some unrelated process on the machine (a CI harness's own script, say).
    """
    words = [word.strip("'\"") for arg in argv for word in arg.split()]
    pairs = itertools.pairwise(words)
    return any(flag in ("--job", "--job-id") and value == job_id for flag, value in pairs) or (
        f"--job-id={job_id}" in words
    )


def job_processes(job_id: str) -> list[str]:
    """'PID ARGV' of every process whose command line names the job or whose environment carries it."""
    tag = f"CCPT_JOB_ID={job_id}".encode()
    return [
        f"{pid} {' '.join(argv)}"
        for pid, argv, environ in _processes()
        if _names_job(argv, job_id) or tag in environ
    ]


def ssh_masters(ssh_config: Path) -> list[str]:
    """'PID ARGV' of every ssh process that reads `ssh_config` (a test's own sshd's: the tests on
    another pytest-xdist worker have theirs) and names one of ccpt's ControlPath folders."""
    return [
        f"{pid} {' '.join(argv)}"
        for pid, argv, _ in _processes()
        if Path(argv[0]).name == "ssh" and str(ssh_config) in argv and any("ccpt-ssh-" in arg for arg in argv)
    ]


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
