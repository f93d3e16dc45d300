"""Hosts for `ccpt train`: DeepSpeed hostfiles, --hosts lists, selection, hostile names refused."""

from __future__ import annotations

import pytest

from ccpt.errors import CcptError
from ccpt.launch.hostfile import HostEntry, parse_hostfile, parse_hosts_flag, select_hosts, split_names

GOOD = """\
# two GPU boxes and a CPU one
worker-1 slots=8
worker-2   slots=4   # trailing comment

10.0.0.7
ubuntu@10.0.0.8 slots=2
"""


def test_hostfile_reads_hosts_slots_comments_and_blank_lines() -> None:
    assert parse_hostfile(GOOD) == [
        HostEntry("worker-1", 8),
        HostEntry("worker-2", 4),
        HostEntry("10.0.0.7", None),
        HostEntry("ubuntu@10.0.0.8", 2),
    ]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a slots=1\nb slot=2\n", 2, "cannot read 'slot=2'"),
        ("a slots=1\n\n# x\nb slots=zero\n", 4, "cannot read 'slots=zero'"),
        ("a slots=0\n", 1, "slots must be at least 1"),
        ("a slots=1 slots=2\n", 1, "slots given twice"),
        ("a\nb\na slots=3\n", 3, "already listed on line 1"),
        ("good\nbad;host slots=1\n", 2, "bad host name 'bad;host'"),
    ],
)
def test_a_bad_hostfile_line_is_reported_with_its_line_number(text: str, line: int, words: str) -> None:
    with pytest.raises(CcptError) as caught:
        parse_hostfile(text, "hosts.txt")
    assert caught.value.message.startswith(f"hosts.txt:{line}: ")
    assert words in caught.value.message
    assert caught.value.exit_code == 2


def test_an_empty_hostfile_is_an_error() -> None:
    with pytest.raises(CcptError, match="no hosts"):
        parse_hostfile("# nothing here\n\n")


@pytest.mark.parametrize(
    "name",
    [
        "-oProxyCommand=touch /tmp/pwned",
        "-F/etc/passwd",
        "node0;id",
        "$(touch x)",
        "`id`",
        "a b",
        "node|cat",
        "host'quote",
        "new\nline",
        "",
    ],
)
def test_hostile_host_names_are_refused_before_reaching_ssh(name: str) -> None:
    with pytest.raises(CcptError, match="bad host name"):
        parse_hosts_flag(f"node1,{name}" if name else "node1,,-x")


def test_hosts_flag_keeps_order_and_refuses_duplicates() -> None:
    assert [h.name for h in parse_hosts_flag("b, a ,c")] == ["b", "a", "c"]
    with pytest.raises(CcptError, match="listed more than once"):
        parse_hosts_flag("a,b,a")


def test_ipv6_and_user_at_host_are_plain_names() -> None:
    assert split_names("[fe80::1],root@gpu-3,gpu_4.example.org", "--hosts") == [
        "[fe80::1]",
        "root@gpu-3",
        "gpu_4.example.org",
    ]


def test_selection_applies_include_then_exclude_then_nodes() -> None:
    hosts = [HostEntry(f"n{i}") for i in range(5)]
    assert [h.name for h in select_hosts(hosts, include=["n3", "n1", "n4"])] == ["n1", "n3", "n4"]
    assert [h.name for h in select_hosts(hosts, exclude=["n0"], nodes=2)] == ["n1", "n2"]
    assert [h.name for h in select_hosts(hosts, include=["n1", "n2"], exclude=["n1"])] == ["n2"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"nodes": 6}, "--nodes 6 asks for more hosts than the 5 given"),
        ({"nodes": 0}, "--nodes must be at least 1"),
        ({"include": ["n9"]}, "--include: n9 not among the hosts"),
        ({"exclude": ["n0", "n1", "n2", "n3", "n4"]}, "no hosts left"),
    ],
)
def test_selection_errors_say_what_is_wrong(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(CcptError) as caught:
        select_hosts([HostEntry(f"n{i}") for i in range(5)], **kwargs)  # type: ignore[arg-type]
    assert words in caught.value.message
