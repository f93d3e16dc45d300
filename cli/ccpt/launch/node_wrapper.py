"""ccpt's node wrapper: checks a node, then runs its command in a session of its own.

The launcher never imports this file on the node. It sends its source on the node's stdin,
after the bootstrap `python -c 'import sys;exec(sys.stdin.read(int(sys.stdin.readline())))'`,
so nothing has to be installed there. One ssh session per node carries the whole job:

1. Probe: print one line, `CCPT-PROBE {json}`, with what the node offers (Python, torch and its
   CUDA build read without importing torch, GPUs, whether the working directory exists, whether
   the rendezvous port is free). Then wait.
2. The launcher judges every node's probe. It answers with one JSON line, the command and its
   environment (so secrets stay off command lines and no shell ever parses the command), or
   closes stdin to call the launch off: then nothing was started.
3. Run: start the command in a new session (its own process group) with CCPT_JOB_ID and
   CCPT_NODE_RANK in its environment (and, for torchrun, OMP_NUM_THREADS set to the node's CPUs
   divided among its processes unless already set), write `STATE_DIR/pid`, and end the whole
   tree, SIGTERM then SIGKILL after `--grace` seconds, when stdin closes (the launcher is gone
   or stopping) or SIGTERM/SIGHUP/SIGINT arrives. However the command ends, processes still
   carrying this job's and node's tag are killed: nothing is left behind.

Kill mode (`--kill`) ends a running wrapper found through its pidfile. Only the standard
library; Python 3.8 syntax.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

PROBE_PREFIX = "CCPT-PROBE "


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ccpt-node")
    parser.add_argument("--job", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--cwd", default=".")
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=None, help="check that this port is free")
    parser.add_argument("--kill", action="store_true")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- probe


def count_gpus() -> int:
    """NVIDIA GPUs this process may use: /dev/nvidiaN files, narrowed by CUDA_VISIBLE_DEVICES."""
    try:
        devices = [name for name in os.listdir("/dev") if re.fullmatch(r"nvidia\d+", name)]
    except OSError:
        devices = []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return min(len(devices), len([part for part in visible.split(",") if part.strip()]))
    return len(devices)


def torch_build() -> tuple[str | None, str | None]:
    """(torch version, CUDA version it was built for), read from torch/version.py, not imported."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None, None
    if spec is None or not spec.submodule_search_locations:
        return None, None
    namespace: dict[str, object] = {}
    try:
        with open(os.path.join(next(iter(spec.submodule_search_locations)), "version.py")) as handle:
            exec(handle.read(), namespace)
    except (OSError, SyntaxError, ImportError):
        return None, None
    version, cuda = namespace.get("__version__"), namespace.get("cuda")
    return (str(version) if version else None), (str(cuda) if cuda else None)


def port_free(port: int) -> bool:
    """Whether a TCP server could listen on `port` on every interface, as torch's store does."""
    with socket.socket() as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as a container or taskset limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def probe(cwd: str, port: int | None) -> dict[str, object]:
    torch_version, cuda = torch_build()
    return {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch_version,
        "cuda": cuda,
        "gpus": count_gpus(),
        "cwd_exists": os.path.isdir(cwd),
        "port_free": port_free(port) if port else None,
        "rsync": shutil.which("rsync") is not None,
    }


# ---------------------------------------------------------------- run and stop


def tagged_pids(job: str, node: str) -> list[int]:
    """Processes whose environment carries this job's and node's tag (Linux /proc)."""
    tags = (f"CCPT_JOB_ID={job}".encode(), f"CCPT_NODE_RANK={node}".encode())
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
        except OSError:
            continue
        if all(tag in variables for tag in tags):
            found.append(int(entry))
    return found


def signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def group_alive(pgid: int) -> bool:
    return signal_group(pgid, 0)


def sweep(job: str, node: str) -> None:
    """SIGKILL every process still tagged with this job and node (escaped its group or not)."""
    for pid in tagged_pids(job, node):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def end_tree(pgid: int, job: str, node: str, grace: float) -> None:
    """SIGTERM the group, wait up to `grace` seconds, then SIGKILL it and any tagged straggler."""
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)
    sweep(job, node)


def parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child if this wrapper dies, even by SIGKILL."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Stopper:
    """Ends the child's tree once, from whichever of stdin-EOF or a signal comes first."""

    def __init__(self, pgid: int, job: str, node: str, grace: float) -> None:
        self.pgid, self.job, self.node, self.grace = pgid, job, node, grace
        self.thread: threading.Thread | None = None
        self.lock = threading.RLock()  # a signal handler may run while the main thread holds it

    def stop(self, reason: str) -> None:
        with self.lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(
                target=end_tree, args=(self.pgid, self.job, self.node, self.grace), daemon=True
            )
            sys.stderr.write(f"ccpt-node: stopping ({reason})\n")
            sys.stderr.flush()
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(self.grace + 5)


def watch_stdin(stopper: Stopper) -> None:
    try:
        while sys.stdin.read(65536):
            pass
    except (OSError, ValueError):
        pass
    stopper.stop("launcher closed the connection")


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(PROBE_PREFIX + json.dumps(probe(args.cwd, args.port)) + "\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the launcher called the launch off: nothing was started
    settings = json.loads(line)
    env = dict(os.environ)
    env.update(settings.get("env", {}))
    env["CCPT_JOB_ID"] = args.job
    env["CCPT_NODE_RANK"] = args.node
    if settings.get("thread_split") and "OMP_NUM_THREADS" not in env:
        # torchrun would set 1 and print a banner saying so; each process gets its share instead.
        env["OMP_NUM_THREADS"] = str(max(1, available_cpus() // int(settings["thread_split"])))
    command = settings["command"]
    try:
        os.chdir(args.cwd)
    except OSError as exc:
        sys.stderr.write(f"ccpt-node: cannot enter {args.cwd}: {exc.strerror}\n")
        return 96
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    try:
        child = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=parent_death_signal(),
        )
    except OSError as exc:
        sys.stderr.write(f"ccpt-node: cannot start {command[0]}: {exc.strerror}\n")
        return 127
    pidfile = os.path.join(args.state_dir, "pid")
    with open(pidfile + ".tmp", "w") as handle:
        handle.write(f"{os.getpid()} {child.pid} {args.job}\n")
    os.replace(pidfile + ".tmp", pidfile)

    stopper = Stopper(child.pid, args.job, args.node, args.grace)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stopper.stop(f"signal {number}"))
    threading.Thread(target=watch_stdin, args=(stopper,), daemon=True).start()

    code = child.wait()
    stopper.join()
    signal_group(child.pid, signal.SIGKILL)  # workers the command left behind in its group
    sweep(args.job, args.node)
    shutil.rmtree(args.state_dir, ignore_errors=True)
    return 128 - code if code < 0 else code


def kill(args: argparse.Namespace) -> int:
    """End the run-mode wrapper named by the pidfile, checking the pid still belongs to the job."""
    try:
        with open(os.path.join(args.state_dir, "pid")) as handle:
            wrapper_pid, child_pid, job = handle.read().split()
    except (OSError, ValueError):
        sweep(args.job, args.node)
        return 0
    if job != args.job or not _is_wrapper_of(int(wrapper_pid), args.job):
        sweep(args.job, args.node)
        return 0
    with contextlib.suppress(OSError):
        os.kill(int(wrapper_pid), signal.SIGTERM)
    deadline = time.monotonic() + args.grace + 1
    while time.monotonic() < deadline and group_alive(int(child_pid)):
        time.sleep(0.05)
    signal_group(int(child_pid), signal.SIGKILL)
    sweep(args.job, args.node)
    return 0


def _is_wrapper_of(pid: int, job: str) -> bool:
    """Whether `pid` is still a wrapper of this job (and not a recycled pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return False
    return b"--job" in words and job.encode() in words


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return kill(args) if args.kill else run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
