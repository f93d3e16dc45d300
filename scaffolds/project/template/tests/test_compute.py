"""EC2 helpers against a real EC2 API served locally by moto (nothing reaches AWS)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import compute


@pytest.fixture(scope="module")
def ec2() -> Iterator[object]:
    """boto3's EC2 client talking to a moto server on a free loopback port, with fake credentials."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.delenv("AWS_PROFILE", raising=False)
        yield compute.ec2_client(region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
    server.stop()


def test_instances_that_fit_are_cheapest_first_and_big_enough() -> None:
    need = compute.training_memory_gb(124_000_000)  # GPT-2 small
    fitting = compute.instances_that_fit(need)
    assert fitting and all(t.gpu_memory_gb >= need for t in fitting)
    assert [t.usd_per_hour for t in fitting] == sorted(t.usd_per_hour for t in fitting)
    assert all(t.gpus >= 4 for t in compute.instances_that_fit(need, gpus=4))
    assert compute.instances_that_fit(1000) == []


def test_launch_list_and_terminate_tagged_instances(ec2) -> None:
    image_id = ec2.describe_images()["Images"][0]["ImageId"]
    ids = compute.launch_instances(ec2, image_id=image_id, instance_type="g6.xlarge", count=2)
    ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)  # not ours

    listed = compute.list_instances(ec2)
    assert sorted(i["id"] for i in listed) == sorted(ids)
    assert {i["type"] for i in listed} == {"g6.xlarge"}

    compute.terminate_instances(ec2, ids)
    assert compute.list_instances(ec2) == []


def test_terminate_refuses_instances_of_other_projects(ec2) -> None:
    image_id = ec2.describe_images()["Images"][0]["ImageId"]
    stranger = ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    stranger_id = stranger["Instances"][0]["InstanceId"]
    with pytest.raises(SystemExit, match="not instances of"):
        compute.terminate_instances(ec2, [stranger_id])
    state = ec2.describe_instances(InstanceIds=[stranger_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "running"
