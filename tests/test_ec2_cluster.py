"""`ccpt ec2 up/ls/down` and `ccpt train --ec2-tag`, with real boto3 against a moto EC2 server."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccpt.app import app
from ccpt.launch.ec2 import MANAGED_TAG, ClusterRequest, Ec2
from tests.conftest import run_ccpt
from tests.moto_ec2 import REGION, ec2_client, ec2_endpoint, moto_server  # noqa: F401 - fixtures
from tests.train_support import make_project

CIDR = "203.0.113.7/32"


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def ccpt_ec2(endpoint: str, *args: str, input: str | None = None) -> Outcome:
    """The real `ccpt ec2` app, in-process (boto3 is imported once, not once per call)."""
    result = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200"}).invoke(
        app, ["ec2", *args, "--endpoint-url", endpoint], input=input
    )
    return Outcome(result.exit_code, result.stdout, result.stderr)


@functools.cache
def an_image(endpoint: str) -> str:
    """One of moto's bundled AMIs (listing all 1,301 of them is slow, so once per server)."""
    return ec2_client(endpoint).describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


def up(endpoint: str, count: int = 2, tag: str = "job=demo", *extra: str) -> Outcome:
    args = ["up", "--count", str(count), "--instance-type", "g5.xlarge", "--tag", tag, "--ssh-cidr", CIDR]
    if "--find-ami" in extra:
        extra = tuple(word for word in extra if word != "--find-ami")
    else:
        args += ["--ami", an_image(endpoint)]
    return ccpt_ec2(endpoint, *args, "--yes", *extra)


def plain_instance(endpoint: str, tags: dict[str, str] | None = None) -> str:
    """An instance ccpt did not start, optionally with tags, made directly with boto3."""
    client = ec2_client(endpoint)
    params: dict[str, object] = {
        "ImageId": an_image(endpoint),
        "InstanceType": "t3.micro",
        "MinCount": 1,
        "MaxCount": 1,
    }
    if tags:
        params["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return client.run_instances(**params)["Instances"][0]["InstanceId"]


def states(endpoint: str) -> dict[str, str]:
    reservations = ec2_client(endpoint).describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def test_up_starts_tagged_running_instances_behind_a_members_only_security_group(ec2_endpoint: str) -> None:  # noqa: F811
    result = up(ec2_endpoint, 2, "job=demo", "--json", "--find-ami")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    image = ec2_client(ec2_endpoint).describe_images(ImageIds=[started["ami"]])["Images"][0]
    assert image["Name"].startswith("Deep Learning")  # found by name, newest first
    assert [i["state"] for i in started["instances"]] == ["running", "running"]
    assert all(i["private_ip"] and i["tags"]["job"] == "demo" for i in started["instances"])
    assert all(i["tags"][MANAGED_TAG] == "true" for i in started["instances"])
    assert started["cost_per_hour"] == pytest.approx(2 * 1.006)
    # moto has no placement groups: against an emulator ccpt says so and carries on without one.
    assert "no placement group" in result.stderr
    group = ec2_client(ec2_endpoint).describe_security_groups(GroupIds=[started["security_group"]])
    rules = group["SecurityGroups"][0]["IpPermissions"]
    members = [r for r in rules if r["IpProtocol"] == "-1"]
    ssh = [r for r in rules if r["IpProtocol"] == "tcp"]
    assert members[0]["UserIdGroupPairs"][0]["GroupId"] == started["security_group"]
    assert members[0]["IpRanges"] == []  # all traffic, but only between members
    assert (ssh[0]["FromPort"], ssh[0]["ToPort"], ssh[0]["IpRanges"]) == (22, 22, [{"CidrIp": CIDR}])
    assert len(rules) == 2


def test_up_prints_the_hosts_and_the_cost_per_hour(ec2_endpoint: str) -> None:  # noqa: F811
    result = up(ec2_endpoint, 3, "job=table", "--spot")
    assert result.returncode == 0, result.stderr
    assert "hosts (private): " in result.stdout
    assert result.stdout.count("g5.xlarge (spot)") == 3
    assert "cost: $3.02/hour (on-demand upper bound" in result.stdout
    assert "next: ccpt train --ec2-tag job=table" in result.stdout


def test_up_asks_before_spending_and_no_means_nothing_starts(ec2_endpoint: str) -> None:  # noqa: F811
    args = ["up", "--count", "2", "--instance-type", "p5.48xlarge", "--tag", "job=x", "--ssh-cidr", CIDR]
    result = ccpt_ec2(ec2_endpoint, *args, input="n\n")
    assert result.returncode == 1
    assert "Start 2 x p5.48xlarge in us-east-1 (on demand $110.08/hour)?" in result.stderr
    assert "nothing started" in result.stderr
    assert states(ec2_endpoint) == {}


def test_ls_lists_instances_with_age_and_cost_and_filters_by_tag(ec2_endpoint: str) -> None:  # noqa: F811
    assert up(ec2_endpoint, 2, "job=demo").returncode == 0
    other = plain_instance(ec2_endpoint)
    tagged = json.loads(ccpt_ec2(ec2_endpoint, "ls", "--tag", "job=demo", "--json").stdout)
    assert len(tagged) == 2
    assert {i["type"] for i in tagged} == {"g5.xlarge"}
    assert all(i["cost_per_hour"] == 1.006 and i["age"] == "0h00m" for i in tagged)
    everything = json.loads(ccpt_ec2(ec2_endpoint, "ls", "--json").stdout)
    assert other in {i["id"] for i in everything} and len(everything) == 3
    table = ccpt_ec2(ec2_endpoint, "ls")
    assert "3 instance(s); running ones cost about $2.02/hour" in table.stdout


def test_down_asks_then_terminates_only_the_tagged_instances(ec2_endpoint: str) -> None:  # noqa: F811
    assert up(ec2_endpoint, 2, "job=demo").returncode == 0
    untagged = plain_instance(ec2_endpoint)
    other_value = plain_instance(ec2_endpoint, {"job": "demo-2"})
    other_key = plain_instance(ec2_endpoint, {"team": "demo"})

    refused = ccpt_ec2(ec2_endpoint, "down", "--tag", "job=demo", input="n\n")
    assert refused.returncode == 1 and "nothing terminated" in refused.stderr
    assert set(states(ec2_endpoint).values()) == {"running"}

    done = ccpt_ec2(ec2_endpoint, "down", "--tag", "job=demo", "--yes")
    assert done.returncode == 0, done.stderr
    assert "terminated 2 instance(s) tagged job=demo" in done.stdout
    assert "deleted security group ccpt-job-demo-" in done.stdout
    after = states(ec2_endpoint)
    assert [after[i] for i in (untagged, other_value, other_key)] == ["running"] * 3
    assert sorted(after.values()) == ["running"] * 3 + ["terminated"] * 2


def test_terminate_refuses_an_instance_without_the_tag(ec2_endpoint: str) -> None:  # noqa: F811
    plain_instance(ec2_endpoint)
    client = Ec2(REGION, None, ec2_endpoint)
    (stranger,) = client.instances()
    with pytest.raises(Exception, match="refusing to terminate"):
        client.terminate([stranger], ("job", "demo"))
    assert set(states(ec2_endpoint).values()) == {"running"}


def test_train_ec2_tag_finds_the_instances_and_feeds_the_dry_run_plan(
    ec2_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    started = json.loads(up(ec2_endpoint, 2, "job=gpt", "--json").stdout)["instances"]
    plain_instance(ec2_endpoint, {"job": "other"})
    project = make_project(tmp_path / "proj")
    empty_config = tmp_path / "ssh_config"
    empty_config.write_text("")
    common = ["--ec2-tag", "job=gpt", "--endpoint-url", ec2_endpoint, "--ssh-config", str(empty_config)]
    for kind in ("private", "public"):
        result = run_ccpt(
            "train", *common, "--ec2-address", kind, "--dry-run", "--json", "--job-id", "e", cwd=project
        )
        assert result.returncode == 0, result.stderr
        plan = json.loads(result.stdout)
        expected = [instance[f"{kind}_ip"] for instance in started]
        assert [node["address"] for node in plan["nodes"]] == expected
        assert [node["argv"][-2] for node in plan["nodes"]] == expected
        assert plan["rdzv_endpoint"].startswith(f"{expected[0]}:")


def test_train_ec2_tag_without_running_instances_says_so(ec2_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj")
    result = run_ccpt(
        "train", "--ec2-tag", "job=none", "--endpoint-url", ec2_endpoint, "--dry-run", cwd=project
    )
    assert result.returncode == 1
    assert "no running EC2 instances tagged job=none in us-east-1" in result.stderr


def test_bad_tags_a_missing_region_and_an_unknown_profile_are_one_line_errors(
    ec2_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = ccpt_ec2(ec2_endpoint, "ls", "--tag", "no-equals-sign")
    assert bad.returncode == 2 and "bad tag 'no-equals-sign'" in bad.stderr
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    missing = ccpt_ec2(ec2_endpoint, "ls")
    assert missing.returncode == 1 and "no AWS region set" in missing.stderr
    assert "Traceback" not in missing.stderr
    monkeypatch.setenv("AWS_PROFILE", "nobody-has-this-profile")
    unknown = ccpt_ec2(ec2_endpoint, "ls")
    assert unknown.returncode == 1 and "AWS profile 'nobody-has-this-profile' not found" in unknown.stderr


def test_on_aws_the_cluster_gets_a_placement_group_and_the_instances_join_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto cannot answer placement-group calls, so botocore's own Stubber answers this one."""
    from botocore.stub import ANY, Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = Ec2(REGION, None, None)
    running = {"InstanceId": "i-1", "InstanceType": "p5.48xlarge", "State": {"Name": "running"}}
    tags = [{"Key": "job", "Value": "gpt"}]
    with Stubber(client.client) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": [{"VpcId": "vpc-1"}]}, {"Filters": ANY})
        group = {"GroupName": ANY, "Description": ANY, "VpcId": "vpc-1", "TagSpecifications": ANY}
        stub.add_response("create_security_group", {"GroupId": "sg-1"}, group)
        stub.add_response("authorize_security_group_ingress", {}, {"GroupId": "sg-1", "IpPermissions": ANY})
        stub.add_response(
            "create_placement_group",
            {},
            {"GroupName": ANY, "Strategy": "cluster", "TagSpecifications": ANY},
        )
        expected_run = {
            "ImageId": "ami-1",
            "InstanceType": "p5.48xlarge",
            "MinCount": 1,
            "MaxCount": 1,
            "SecurityGroupIds": ["sg-1"],
            "TagSpecifications": ANY,
            "Placement": {"GroupName": ANY},
        }
        stub.add_response("run_instances", {"Instances": [running]}, expected_run)
        stub.add_response(
            "describe_instances", {"Reservations": [{"Instances": [running]}]}, {"InstanceIds": ["i-1"]}
        )
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{**running, "Tags": tags}]}]},
            {"Filters": ANY},
        )
        request = ClusterRequest(1, "p5.48xlarge", ("job", "gpt"), CIDR, ami="ami-1")
        cluster = client.launch_cluster(request)
        stub.assert_no_pending_responses()
    assert cluster.placement_group is not None and cluster.placement_group.startswith("ccpt-job-gpt-")
    assert [i.id for i in cluster.instances] == ["i-1"]
