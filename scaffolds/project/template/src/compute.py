"""EC2 for this project through boto3: which GPU instance fits the model, what a run
costs, and launching, listing and terminating the instances tagged with this project's name.

    python src/compute.py plan --hours 2                  # instances that fit, cheapest first
    python src/compute.py launch --image-id ami-0123 --instance-type g6.xlarge --count 2 --key-name me
    python src/compute.py list
    python src/compute.py terminate i-0abc i-0def

Credentials and region come from the usual AWS places (environment, ~/.aws, an instance role);
--endpoint-url points boto3 at LocalStack or moto to rehearse without touching AWS. Prices are
approximate on-demand list prices in us-east-1 (2024): check the current ones before a long run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from config import PROJECT_NAME, Config

TAG_KEY = "Project"
PROJECT_TAG = PROJECT_NAME
ACTIVE_STATES = ("pending", "running", "stopping", "stopped")


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpus: int
    gpu: str
    gpu_memory_gb: int  # per GPU
    vcpus: int
    usd_per_hour: float


INSTANCE_TYPES = (
    InstanceType("g4dn.xlarge", 1, "T4", 16, 4, 0.526),
    InstanceType("g6.xlarge", 1, "L4", 24, 4, 0.805),
    InstanceType("g5.xlarge", 1, "A10G", 24, 4, 1.006),
    InstanceType("g6e.xlarge", 1, "L40S", 48, 4, 1.861),
    InstanceType("g5.12xlarge", 4, "A10G", 24, 48, 5.672),
    InstanceType("g6e.12xlarge", 4, "L40S", 48, 48, 10.493),
    InstanceType("p4d.24xlarge", 8, "A100", 40, 96, 32.773),
    InstanceType("p5.48xlarge", 8, "H100", 80, 192, 98.32),
)


def training_memory_gb(parameters: int) -> float:
    """A rough GPU memory need for training with AdamW in mixed precision: 16 bytes per parameter
    (fp32 weights, gradients and two moments), half as much again for activations, plus 2 GB."""
    return parameters * 16 * 1.5 / 1e9 + 2.0


def instances_that_fit(memory_gb: float, gpus: int = 1) -> list[InstanceType]:
    """Instance types with at least `gpus` GPUs of at least `memory_gb` each, cheapest first."""
    fitting = [t for t in INSTANCE_TYPES if t.gpus >= gpus and t.gpu_memory_gb >= memory_gb]
    return sorted(fitting, key=lambda t: t.usd_per_hour)


def ec2_client(region: str | None = None, endpoint_url: str | None = None, profile: str | None = None):
    import boto3  # only needed here: the rest of the project runs without AWS libraries

    session = boto3.Session(profile_name=profile, region_name=region or None)
    return session.client("ec2", endpoint_url=endpoint_url or None)


def launch_instances(
    client,
    *,
    image_id: str,
    instance_type: str,
    count: int = 1,
    key_name: str | None = None,
    subnet_id: str | None = None,
    security_group_ids: list[str] | None = None,
    spot: bool = False,
) -> list[str]:
    """Start `count` instances tagged Project=<this project>; returns their ids."""
    request: dict = {
        "ImageId": image_id,
        "InstanceType": instance_type,
        "MinCount": count,
        "MaxCount": count,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": TAG_KEY, "Value": PROJECT_TAG}]}],
    }
    if key_name:
        request["KeyName"] = key_name
    if subnet_id:
        request["SubnetId"] = subnet_id
    if security_group_ids:
        request["SecurityGroupIds"] = security_group_ids
    if spot:
        request["InstanceMarketOptions"] = {"MarketType": "spot"}
    response = client.run_instances(**request)
    return [instance["InstanceId"] for instance in response["Instances"]]


def list_instances(client, states: tuple[str, ...] = ACTIVE_STATES) -> list[dict[str, str]]:
    """This project's instances: id, type, state and addresses."""
    filters = [
        {"Name": f"tag:{TAG_KEY}", "Values": [PROJECT_TAG]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    found = []
    for page in client.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                found.append(
                    {
                        "id": instance["InstanceId"],
                        "type": instance["InstanceType"],
                        "state": instance["State"]["Name"],
                        "public_ip": instance.get("PublicIpAddress", ""),
                        "private_ip": instance.get("PrivateIpAddress", ""),
                    }
                )
    return found


def terminate_instances(client, instance_ids: list[str]) -> None:
    """Terminate instances, refusing any that do not carry this project's tag."""
    ours = {instance["id"] for instance in list_instances(client)}
    strangers = sorted(set(instance_ids) - ours)
    if strangers:
        raise SystemExit(f"error: not instances of {PROJECT_TAG}: {', '.join(strangers)}")
    client.terminate_instances(InstanceIds=instance_ids)


def latest_parameter_count() -> int | None:
    """Parameters of the latest finished run's model, if there is one."""
    runs = [d for d in Config().runs_path().glob("*/metrics.jsonl")]
    for metrics_file in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True):
        finals = [json.loads(line) for line in metrics_file.read_text().splitlines() if '"final"' in line]
        if finals:
            return int(finals[-1]["parameters"])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="compute.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--region", default=None)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--endpoint-url", default=None, help="LocalStack or moto, e.g. http://127.0.0.1:4566")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="instance types that fit this project's model, with cost")
    plan.add_argument("--parameters", type=int, help="model parameters (default: the latest run's)")
    plan.add_argument("--gpus", type=int, default=1)
    plan.add_argument("--hours", type=float, default=1.0)
    launch = commands.add_parser("launch", help="start tagged instances")
    launch.add_argument(
        "--image-id", required=True, help="an AMI with CUDA and PyTorch (e.g. a Deep Learning AMI)"
    )
    launch.add_argument("--instance-type", required=True)
    launch.add_argument("--count", type=int, default=1)
    launch.add_argument("--key-name")
    launch.add_argument("--subnet-id")
    launch.add_argument("--security-group-id", action="append", dest="security_group_ids")
    launch.add_argument("--spot", action="store_true", help="spot capacity: cheaper, can be reclaimed")
    commands.add_parser("list", help="this project's instances")
    terminate = commands.add_parser("terminate", help="terminate this project's instances")
    terminate.add_argument("instance_ids", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "plan":
        parameters = args.parameters or latest_parameter_count()
        if parameters is None:
            parser.error("no finished run to size from: train first, or pass --parameters")
        need = training_memory_gb(parameters)
        print(f"{parameters:,} parameters need about {need:.1f} GB of GPU memory to train")
        for t in instances_that_fit(need, args.gpus):
            price = f"${t.usd_per_hour:.3f}/h, ${t.usd_per_hour * args.hours:.2f} for {args.hours:g} h"
            print(f"{t.name:14} {t.gpus} x {t.gpu:5} {t.gpu_memory_gb:3} GB  {price}")
        return 0
    client = ec2_client(args.region, args.endpoint_url, args.profile)
    if args.command == "launch":
        ids = launch_instances(
            client,
            image_id=args.image_id,
            instance_type=args.instance_type,
            count=args.count,
            key_name=args.key_name,
            subnet_id=args.subnet_id,
            security_group_ids=args.security_group_ids,
            spot=args.spot,
        )
        print("\n".join(ids))
    elif args.command == "list":
        for instance in list_instances(client):
            print(json.dumps(instance))
    else:
        terminate_instances(client, args.instance_ids)
        print(f"terminating {len(args.instance_ids)} instance(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
