"""The merged console stream: host:rank prefixes, per-host and per-rank files, flat memory."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

from ccpt.launch.logs import LogRouter

TORCHRUN_REPORT = b"""\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
train.py FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-11-28_12:56:20
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 17108)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-28_12:56:20
  host      : gpu-7
  rank      : 3 (local_rank: 1)
  exitcode  : 7 (pid: 17109)
============================================================
"""


def test_lines_get_a_host_rank_prefix_and_land_in_host_and_rank_files(tmp_path: Path) -> None:
    console = io.StringIO()
    router = LogRouter(tmp_path, console)
    router.add_host("node0")
    router.add_host("node1")
    # Chunks split lines anywhere; stdout and stderr of one host are kept apart until each line ends.
    router.feed("node0", "out", b"[rank0]:step 1 lo")
    router.feed("node1", "out", b"[rank1]:step 1 loss 2.0\n[rank1]:[rank1]: Traceback\n")
    router.feed("node0", "err", b"W1128 torchrun warning\n")
    router.feed("node0", "out", b"ss 1.0\n[rank0]:no newline at the end")
    router.close()
    assert console.getvalue().splitlines() == [
        "node1:1 | step 1 loss 2.0",
        "node1:1 | [rank1]: Traceback",
        "node0 | W1128 torchrun warning",
        "node0:0 | step 1 loss 1.0",
        "node0:0 | no newline at the end",
    ]
    assert (tmp_path / "rank-0.log").read_text() == "step 1 loss 1.0\nno newline at the end\n"
    assert (tmp_path / "rank-1.log").read_text() == "step 1 loss 2.0\n[rank1]: Traceback\n"
    assert (tmp_path / "node0.log").read_text().splitlines() == [
        "node0 | W1128 torchrun warning",
        "node0:0 | step 1 loss 1.0",
        "node0:0 | no newline at the end",
    ]
    assert router.ranks_on("node0") == [0]


def test_console_can_show_rank_zero_only_without_host_labels(tmp_path: Path) -> None:
    console = io.StringIO()
    router = LogRouter(tmp_path, console, console_ranks={0}, show_host=False)
    router.add_host("local")
    router.feed("local", "out", b"[rank0]:zero\n[rank1]:one\nagent line\n")
    router.close()
    assert console.getvalue() == "zero\nagent line\n"
    assert (tmp_path / "rank-1.log").read_text() == "one\n"


def test_colour_prefixes_are_ansi_and_host_names_become_safe_file_names(tmp_path: Path) -> None:
    console = io.StringIO()
    router = LogRouter(tmp_path, console, colour=True)
    router.add_host("ubuntu@10.0.0.7")
    router.feed("ubuntu@10.0.0.7", "out", b"[rank2]:hi\n")
    router.close()
    assert console.getvalue() == "\x1b[36mubuntu@10.0.0.7:2\x1b[0m | hi\n"
    assert (tmp_path / "ubuntu_10.0.0.7.log").is_file()


def test_torchruns_root_cause_names_the_failing_rank_and_its_last_lines(tmp_path: Path) -> None:
    router = LogRouter(tmp_path, io.StringIO())
    router.add_host("gpu-7")
    router.feed("gpu-7", "out", b"".join(b"[rank3]:line %d\n" % i for i in range(30)))
    router.feed("gpu-7", "err", TORCHRUN_REPORT)
    cause = router.root_cause("gpu-7")
    assert cause is not None and (cause.rank, cause.exit_code) == (3, 7)
    assert router.last_lines("gpu-7", 3, count=3) == ["line 27", "line 28", "line 29"]
    # A rank that printed nothing gets its host's last lines: what the job printed, not the report.
    assert not router.printed(1)
    assert router.last_lines("gpu-7", 1, count=1) == router.last_lines("gpu-7", None, count=1) == ["line 29"]


TORCHRUN_TRACEBACK = b"""\
Traceback (most recent call last):
  File "/venv/bin/torchrun", line 10, in <module>
    sys.exit(main())
             ^^^^^^
  File "/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 317, in launch_agent
    raise ChildFailedError(
"""


def test_torchruns_own_failure_traceback_stays_off_the_console(tmp_path: Path) -> None:
    """The summary names the failed rank; the traceback through torchrun's code says nothing more."""
    console = io.StringIO()
    router = LogRouter(tmp_path, console)
    router.add_host("gpu-7")
    router.feed("gpu-7", "out", b"[rank3]:error: the training loss became nan\n")
    router.feed("gpu-7", "err", b"E1129 api.py:986] failed (exitcode: 7) local_rank: 1\n")
    router.feed("gpu-7", "err", TORCHRUN_TRACEBACK + TORCHRUN_REPORT + b"after the report\n")
    router.close()
    assert console.getvalue().splitlines() == [
        "gpu-7:3 | error: the training loss became nan",
        "gpu-7 | E1129 api.py:986] failed (exitcode: 7) local_rank: 1",
        "gpu-7 | after the report",
    ]
    cause = router.root_cause("gpu-7")
    assert cause is not None and (cause.rank, cause.exit_code) == (3, 7)
    logged = (tmp_path / "gpu-7.log").read_text()
    assert "raise ChildFailedError(" in logged and "Root Cause (first observed failure):" in logged


def test_any_other_traceback_of_torchruns_is_shown_whole(tmp_path: Path) -> None:
    console = io.StringIO()
    router = LogRouter(tmp_path, console)
    router.add_host("a")
    other = TORCHRUN_TRACEBACK.replace(b"raise ChildFailedError(", b"store = TCPStore(...)")
    router.feed("a", "err", other + b"torch.distributed.DistNetworkError: connection refused\n")
    router.feed("a", "err", TORCHRUN_TRACEBACK)  # the output ends inside a traceback: shown too
    router.close()
    shown = [line.removeprefix("a | ") for line in console.getvalue().splitlines()]
    expected = [*other.decode().splitlines(), "torch.distributed.DistNetworkError: connection refused"]
    assert shown == expected + TORCHRUN_TRACEBACK.decode().splitlines()


def test_memory_stays_flat_however_many_lines_stream_through(tmp_path: Path) -> None:
    console = open(os.devnull, "w")  # noqa: SIM115 - a console that keeps nothing, like a terminal
    router = LogRouter(tmp_path, console)
    router.add_host("a")
    chunk = b"".join(b"[rank%d]:step %06d loss 0.123456 tokens/s 123456\n" % (i % 4, i) for i in range(2000))

    def stream(chunks: int) -> int:
        tracemalloc.start()
        for _ in range(chunks):
            router.feed("a", "out", chunk)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = stream(2), stream(40)  # 4,000 lines, then 80,000 lines
    router.close()
    console.close()
    assert large < small * 2 + 512 * 1024
    assert router.lines == 84_000


def test_an_endless_line_is_cut_instead_of_filling_memory(tmp_path: Path) -> None:
    router = LogRouter(tmp_path, io.StringIO())
    router.add_host("a")
    for _ in range(100):
        router.feed("a", "out", b"x" * 10_000)
    router.close()
    lengths = [len(line) for line in (tmp_path / "a.log").read_text().splitlines()]
    assert sum(lengths) > 1_000_000 - 100
    assert max(lengths) <= 64 * 1024 + 10_000 + 10


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_console_does_not_stop_the_logs(tmp_path: Path) -> None:
    router = LogRouter(tmp_path, ClosedPipe())  # e.g. `ccpt train | head` after head is done
    router.add_host("a")
    router.feed("a", "out", b"[rank0]:one\n[rank0]:two\n")
    router.close()
    assert (tmp_path / "rank-0.log").read_text() == "one\ntwo\n"
