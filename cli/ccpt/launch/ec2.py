"""EC2 for multi-node training (boto3): find instances by tag, start a tagged cluster, stop it.

A cluster from `ccpt ec2 up` is a set of instances carrying the user's KEY=VALUE tag, in a
cluster placement group, behind a security group that lets members talk to each other on every
port and lets SSH in only from the caller's address. Everything ccpt creates also carries
`ccpt:managed=true`, and `down` only ever touches instances that carry the user's tag.
Prices come from `ec2_prices.toml`, a table kept as data.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ccpt import toml
from ccpt.errors import CcptError

MANAGED_TAG = "ccpt:managed"
LIVE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
# Newest first: AWS's PyTorch Deep Learning AMIs, then any Ubuntu Deep Learning AMI.
DLAMI_NAME_PATTERNS = (
    "Deep Learning OSS Nvidia Driver AMI GPU PyTorch*Ubuntu*",
    "Deep Learning AMI GPU PyTorch*",
    "Deep Learning*Ubuntu*",
)
_TAG_RE = re.compile(r"^([^=\s][^=]*)=(.*)$")


def parse_tag(text: str) -> tuple[str, str]:
    match = _TAG_RE.match(text.strip())
    if not match or match.group(1).startswith("aws:"):
        raise CcptError(f"bad tag {text!r}", hint="write it as KEY=VALUE, e.g. job=gpt-small", exit_code=2)
    return match.group(1).strip(), match.group(2).strip()


@dataclass(frozen=True)
class PriceTable:
    on_demand: dict[str, float]
    region: str
    as_of: str

    def hourly(self, instance_type: str) -> float | None:
        return self.on_demand.get(instance_type)


def load_prices(path: Path | None = None) -> PriceTable:
    path = path or Path(__file__).with_name("ec2_prices.toml")
    data = toml.loads(path.read_text(encoding="utf-8"))
    meta = data.get("meta", {})
    prices = {name: float(value) for name, value in data.get("on_demand", {}).items()}
    return PriceTable(prices, str(meta.get("region", "?")), str(meta.get("as_of", "?")))


@dataclass(frozen=True)
class Instance:
    id: str
    type: str
    state: str
    private_ip: str | None
    public_ip: str | None
    launched: datetime | None
    tags: dict[str, str]
    spot: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Instance:
        return cls(
            id=data["InstanceId"],
            type=data.get("InstanceType", "?"),
            state=data.get("State", {}).get("Name", "?"),
            private_ip=data.get("PrivateIpAddress"),
            public_ip=data.get("PublicIpAddress"),
            launched=data.get("LaunchTime"),
            tags={tag["Key"]: tag["Value"] for tag in data.get("Tags", [])},
            spot=data.get("InstanceLifecycle") == "spot",
        )

    def has_tag(self, tag: tuple[str, str]) -> bool:
        return self.tags.get(tag[0]) == tag[1]

    def age(self, now: datetime | None = None) -> str:
        if self.launched is None:
            return "-"
        seconds = int(((now or datetime.now(timezone.utc)) - self.launched).total_seconds())
        hours, minutes = divmod(max(seconds, 0) // 60, 60)
        return f"{hours // 24}d{hours % 24}h" if hours >= 24 else f"{hours}h{minutes:02d}m"

    def to_dict(self, prices: PriceTable, now: datetime | None = None) -> dict[str, object]:
        return {
            "id": self.id,
            "type": self.type,
            "state": self.state,
            "private_ip": self.private_ip,
            "public_ip": self.public_ip,
            "launched": self.launched.isoformat() if self.launched else None,
            "age": self.age(now),
            "spot": self.spot,
            "cost_per_hour": prices.hourly(self.type),
            "tags": self.tags,
        }


@dataclass
class ClusterRequest:
    count: int
    instance_type: str
    tag: tuple[str, str]
    ssh_cidr: str
    spot: bool = False
    placement_group: bool = True
    ami: str | None = None
    key_name: str | None = None


@dataclass
class Cluster:
    instances: list[Instance]
    security_group: str
    placement_group: str | None
    ami: str
    notes: list[str] = field(default_factory=list)


def _quiet(message: str) -> None:
    """The default progress sink: the core reports, the command decides whether to show."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-")[:40] or "cluster"


class Ec2:
    """A thin, error-translating layer over boto3's EC2 client."""

    def __init__(self, region: str | None, profile: str | None, endpoint_url: str | None) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        try:
            session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as exc:
            # exc.kwargs names the profile also when it came from AWS_PROFILE rather than `profile`
            raise CcptError(
                f"AWS profile {exc.kwargs.get('profile', profile)!r} not found",
                hint="aws configure --profile NAME, or unset AWS_PROFILE",
            ) from exc
        except BotoCoreError as exc:
            raise CcptError(f"cannot set up AWS: {exc}") from exc
        if not session.region_name:
            raise CcptError(
                "no AWS region set", hint="pass --region, set AWS_DEFAULT_REGION, or `region` in [tool.ccpt]"
            )
        self.region = session.region_name
        self.endpoint_url = endpoint_url
        try:
            self.client = session.client(
                "ec2",
                endpoint_url=endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
        except ValueError as exc:  # botocore's "Invalid endpoint: ..."
            raise CcptError(str(exc), hint="--endpoint-url takes a URL, e.g. http://localhost:4566") from exc

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call an EC2 API; every AWS failure becomes one CcptError line."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )
        from botocore.parsers import ResponseParserError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ResponseParserError as exc:  # e.g. an emulator's 500 for an action it lacks
            raise CcptError(f"EC2 {operation}: the endpoint sent an unreadable answer") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CcptError(f"EC2 {operation}: {error.get('Code')}: {error.get('Message')}") from exc
        except NoCredentialsError as exc:
            raise CcptError("no AWS credentials found", hint="aws configure, or set AWS_PROFILE") from exc
        except EndpointConnectionError as exc:
            raise CcptError(f"cannot reach EC2: {exc}", hint="check --endpoint-url and the network") from exc
        except BotoCoreError as exc:
            raise CcptError(f"EC2 {operation} failed: {exc}") from exc

    def _pages(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._call(operation, **kwargs)
            items += page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return items
            kwargs["NextToken"] = token

    # ------------------------------------------------------------ reading

    def instances(
        self, tag: tuple[str, str] | None = None, states: Sequence[str] = LIVE_STATES
    ) -> list[Instance]:
        """Instances (optionally with `tag`) in the given states, oldest first."""
        filters = [{"Name": "instance-state-name", "Values": list(states)}]
        if tag is not None:
            filters.append({"Name": f"tag:{tag[0]}", "Values": [tag[1]]})
        reservations = self._pages("describe_instances", "Reservations", Filters=filters)
        found = [Instance.from_api(item) for res in reservations for item in res.get("Instances", [])]
        # The tag is checked here too: nothing without it is ever returned, whatever the endpoint did.
        found = [instance for instance in found if tag is None or instance.has_tag(tag)]
        return sorted(found, key=lambda i: (i.launched or datetime.min.replace(tzinfo=timezone.utc), i.id))

    def addresses_by_tag(self, tag: tuple[str, str], kind: str = "private") -> list[str]:
        """Addresses of the running instances with `tag`, for `ccpt train --ec2-tag`."""
        if kind not in ("private", "public"):
            raise CcptError(f"--ec2-address must be private or public, got {kind!r}", exit_code=2)
        running = self.instances(tag, states=("running",))
        if not running:
            raise CcptError(
                f"no running EC2 instances tagged {tag[0]}={tag[1]} in {self.region}",
                hint="see `ccpt ec2 ls`, or start some with `ccpt ec2 up`",
            )
        addresses = [i.private_ip if kind == "private" else i.public_ip for i in running]
        missing = [i.id for i, address in zip(running, addresses, strict=True) if not address]
        if missing:
            raise CcptError(
                f"{', '.join(missing)} have no {kind} IP address", hint="try the other --ec2-address"
            )
        return [address for address in addresses if address]

    def find_ami(self) -> str:
        """The newest x86_64 Deep Learning AMI (PyTorch) published by Amazon in this region."""
        for pattern in DLAMI_NAME_PATTERNS:
            images = self._call(
                "describe_images",
                Owners=["amazon"],
                Filters=[
                    {"Name": "name", "Values": [pattern]},
                    {"Name": "state", "Values": ["available"]},
                    {"Name": "architecture", "Values": ["x86_64"]},
                ],
            ).get("Images", [])
            if images:
                return max(images, key=lambda image: image.get("CreationDate", ""))["ImageId"]
        raise CcptError(f"no Deep Learning AMI found in {self.region}", hint="pass --ami ID")

    def default_vpc(self) -> str:
        vpcs = self._call("describe_vpcs", Filters=[{"Name": "is-default", "Values": ["true"]}]).get(
            "Vpcs", []
        )
        if not vpcs:
            raise CcptError(f"no default VPC in {self.region}", hint="create one: aws ec2 create-default-vpc")
        return vpcs[0]["VpcId"]

    # ------------------------------------------------------------ changing

    def _tags(self, tag: tuple[str, str], resource: str, name: str) -> list[dict[str, Any]]:
        tags = [
            {"Key": tag[0], "Value": tag[1]},
            {"Key": MANAGED_TAG, "Value": "true"},
            {"Key": "Name", "Value": name},
        ]
        return [{"ResourceType": resource, "Tags": tags}]

    def launch_cluster(self, request: ClusterRequest, progress: Callable[[str], None] = _quiet) -> Cluster:
        """Security group, placement group, instances; returns once every instance is running."""
        key, value = request.tag
        name = f"ccpt-{_slug(key)}-{_slug(value)}-{secrets.token_hex(3)}"
        ami = request.ami or self.find_ami()
        vpc = self.default_vpc()
        progress(f"security group {name}: all traffic between members, SSH from {request.ssh_cidr}")
        group = self._call(
            "create_security_group",
            GroupName=name,
            Description=f"ccpt cluster {key}={value}",
            VpcId=vpc,
            TagSpecifications=self._tags(request.tag, "security-group", name),
        )["GroupId"]
        self._call(
            "authorize_security_group_ingress",
            GroupId=group,
            IpPermissions=[
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]},
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": request.ssh_cidr}],
                },
            ],
        )
        notes: list[str] = []
        placement = self._placement_group(request, name, notes, progress) if request.placement_group else None
        params: dict[str, Any] = {
            "ImageId": ami,
            "InstanceType": request.instance_type,
            "MinCount": request.count,
            "MaxCount": request.count,
            "SecurityGroupIds": [group],
            "TagSpecifications": self._tags(request.tag, "instance", name),
        }
        if placement:
            params["Placement"] = {"GroupName": placement}
        if request.key_name:
            params["KeyName"] = request.key_name
        if request.spot:
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
            }
        progress(
            f"starting {request.count} x {request.instance_type} ({'spot' if request.spot else 'on demand'})"
        )
        ids = [item["InstanceId"] for item in self._call("run_instances", **params)["Instances"]]
        progress("waiting until every instance is running")
        self._wait(ids, "running")
        instances = [i for i in self.instances(request.tag) if i.id in ids]
        return Cluster(instances, group, placement, ami, notes)

    def _placement_group(
        self, request: ClusterRequest, name: str, notes: list[str], progress: Callable[[str], None]
    ) -> str | None:
        progress(f"cluster placement group {name}")
        try:
            self._call(
                "create_placement_group",
                GroupName=name,
                Strategy="cluster",
                TagSpecifications=self._tags(request.tag, "placement-group", name),
            )
        except CcptError as exc:
            if self.endpoint_url is None:
                raise
            # LocalStack and moto lack placement groups; against them, carry on without one.
            notes.append(f"no placement group ({self.endpoint_url} cannot make one: {exc.message})")
            return None
        return name

    def _wait(self, ids: list[str], state: str, timeout_s: float = 900.0) -> None:
        """Poll until every instance is in `state`: quickly at first, then every 5 s."""
        delays = iter((0.2, 0.5, 1, 2, 3, 4))
        deadline = time.monotonic() + timeout_s
        while True:
            reservations = self._pages("describe_instances", "Reservations", InstanceIds=ids)
            seen = {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r.get("Instances", [])}
            if len(seen) == len(ids) and all(name == state for name in seen.values()):
                return
            failed = sorted(i for i, name in seen.items() if name == "terminated" and state != "terminated")
            if failed or time.monotonic() > deadline:
                raise CcptError(
                    f"EC2 instances did not become {state}: {', '.join(f'{i} {n}' for i, n in seen.items())}",
                    hint="see the EC2 console for the reason (capacity, quota, spot price)",
                )
            time.sleep(next(delays, 5))

    def terminate(self, instances: Sequence[Instance], tag: tuple[str, str]) -> list[str]:
        """Terminate `instances` (each must carry `tag`), wait, then delete ccpt's groups for the tag.

        Returns notes about what was cleaned up or kept.
        """
        untagged = [i.id for i in instances if not i.has_tag(tag)]
        if untagged:
            raise CcptError(f"refusing to terminate {', '.join(untagged)}: not tagged {tag[0]}={tag[1]}")
        ids = [i.id for i in instances]
        if ids:
            self._call("terminate_instances", InstanceIds=ids)
            self._wait(ids, "terminated")
        return self._delete_groups(tag)

    def _delete_groups(self, tag: tuple[str, str]) -> list[str]:
        if self.instances(tag):
            return ["kept the security group: instances with the tag still exist"]
        filters = [
            {"Name": f"tag:{tag[0]}", "Values": [tag[1]]},
            {"Name": f"tag:{MANAGED_TAG}", "Values": ["true"]},
        ]
        notes = []
        for group in self._pages("describe_security_groups", "SecurityGroups", Filters=filters):
            self._call("delete_security_group", GroupId=group["GroupId"])
            notes.append(f"deleted security group {group.get('GroupName', group['GroupId'])}")
        try:
            groups = self._call("describe_placement_groups", Filters=filters).get("PlacementGroups", [])
        except CcptError:
            if self.endpoint_url is None:
                raise
            groups = []
        for group in groups:
            self._call("delete_placement_group", GroupName=group["GroupName"])
            notes.append(f"deleted placement group {group['GroupName']}")
        return notes


def detect_public_cidr(timeout: float = 5.0) -> str:
    """This machine's public IPv4 address as a /32, from AWS's checkip service."""
    import ipaddress
    import urllib.request

    try:
        with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=timeout) as response:
            text = response.read().decode().strip()
        return f"{ipaddress.IPv4Address(text)}/32"
    except (OSError, ValueError) as exc:
        raise CcptError(
            "cannot find your public address for the SSH rule", hint="pass --ssh-cidr A.B.C.D/32"
        ) from exc
