"""The pre-flight probe: what one node offers a launch, printed as one JSON line.

Like the node wrapper, the launcher sends this file's source on stdin to the node's Python, so
nothing needs installing there. It is quick on purpose: torch's version and CUDA build are read
from its metadata and `torch/version.py` without importing torch (seconds on a busy node), and
GPUs are counted from the driver's device files. `count_gpus` is also used by the launcher.

Only the standard library; Python 3.8 syntax.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import sys


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
    """(torch version, CUDA version it was built for) without importing torch."""
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


def probe(cwd: str, port: int | None) -> dict[str, object]:
    torch_version, cuda = torch_build()
    return {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch_version,
        "cuda": cuda,
        "gpus": count_gpus(),
        "cwd": cwd,
        "cwd_exists": os.path.isdir(cwd),
        "port": port,
        "port_free": port_free(port) if port else None,
        "rsync": shutil.which("rsync") is not None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ccpt-probe")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(probe(args.cwd, args.port)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
