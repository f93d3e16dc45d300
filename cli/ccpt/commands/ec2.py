"""`ccpt ec2`: start, list and stop tagged EC2 GPU clusters for `ccpt train --ec2-tag`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ccpt.commands.common import AWS_ENDPOINT, AWS_PROFILE, AWS_REGION, examples, load_settings
from ccpt.commands.output import console, err_console, fit_columns, make_table, print_json
from ccpt.errors import CcptError

if TYPE_CHECKING:
    from rich.table import Table

    from ccpt.launch.ec2 import Ec2, Instance, PriceTable

app = typer.Typer(no_args_is_help=True)


def _client(region: str | None, profile: str | None, endpoint_url: str | None) -> Ec2:
    from ccpt.launch.ec2 import Ec2

    settings = load_settings(region=region, profile=profile, endpoint_url=endpoint_url)
    return Ec2(settings.region, settings.profile, settings.endpoint_url)


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def _instance_table(title: str, instances: list[Instance], prices: PriceTable) -> Table:
    """One row per instance. Only the tags wrap: an id, a type or an address cut over two lines
    cannot be copied. In a narrow terminal the public IP, age, state and price go, in that order."""
    rows = []
    for i in instances:
        tags = ",".join(f"{k}={v}" for k, v in sorted(i.tags.items()) if not k.startswith(("ccpt:", "aws:")))
        spot = " (spot)" if i.spot else ""
        cells = [i.id, i.type + spot, i.state, i.private_ip or "-", i.public_ip or "-", i.age()]
        rows.append([*cells, _money(prices.hourly(i.type)), tags])
    table = make_table(title, INSTANCE_COLUMNS, rows)
    for column in table.columns:
        column.no_wrap = column.header != "tags"
    return fit_columns(table, "tags", ["public ip", "age", "state", "$/hour"], min_prose=12)


INSTANCE_COLUMNS = ["id", "type", "state", "private ip", "public ip", "age", "$/hour", "tags"]


@app.command(
    "up",
    epilog=examples(
        "ccpt ec2 up --count 2 --instance-type p5.48xlarge --tag job=gpt",
        "ccpt ec2 up --count 4 --instance-type g5.12xlarge --tag job=bert --spot --key-name me --yes",
    ),
)
def up(
    count: int = typer.Option(..., "--count", min=1, help="Number of instances."),
    instance_type: str = typer.Option(..., "--instance-type", help="EC2 instance type, e.g. p5.48xlarge."),
    tag: str = typer.Option(..., "--tag", help="KEY=VALUE put on everything started (and used by down)."),
    spot: bool = typer.Option(False, "--spot", help="Ask for spot capacity (cheaper, can be taken back)."),
    placement_group: bool = typer.Option(
        True, "--placement-group/--no-placement-group", help="Put the instances in a cluster placement group."
    ),
    ami: str = typer.Option(None, "--ami", help="AMI id (default: the newest PyTorch Deep Learning AMI)."),
    key_name: str = typer.Option(None, "--key-name", help="EC2 key pair for SSH logins."),
    ssh_cidr: str = typer.Option(None, "--ssh-cidr", help="Who may SSH in (default: your public IP /32)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before starting paid instances."),
    json_output: bool = typer.Option(False, "--json", help="Print the started instances as JSON."),
    region: str = AWS_REGION,
    profile: str = AWS_PROFILE,
    endpoint_url: str = AWS_ENDPOINT,
) -> None:
    """Start a tagged cluster: placement group, security group, instances; wait until running."""
    from ccpt.launch.ec2 import ClusterRequest, detect_public_cidr, load_prices, parse_tag

    parsed = parse_tag(tag)
    client = _client(region, profile, endpoint_url)
    prices = load_prices()
    hourly = prices.hourly(instance_type)
    cost = None if hourly is None else hourly * count
    market = "spot, at most" if spot else "on demand"
    question = f"Start {count} x {instance_type} in {client.region} ({market} {_money(cost)}/hour)?"
    if not yes and not typer.confirm(question, default=False, err=True):
        raise CcptError("nothing started", hint="pass --yes to skip the question", exit_code=1)
    request = ClusterRequest(
        count=count,
        instance_type=instance_type,
        tag=parsed,
        ssh_cidr=ssh_cidr or detect_public_cidr(),
        spot=spot,
        placement_group=placement_group,
        ami=ami,
        key_name=key_name,
    )
    cluster = client.launch_cluster(request, progress=lambda m: err_console.print(f"[dim]· {m}[/dim]"))
    for note in cluster.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if json_output:
        print_json(
            {
                "instances": [i.to_dict(prices) for i in cluster.instances],
                "security_group": cluster.security_group,
                "placement_group": cluster.placement_group,
                "ami": cluster.ami,
                "cost_per_hour": cost,
            }
        )
        return
    console.print(_instance_table(f"cluster {tag}", cluster.instances, prices))
    hosts = ",".join(i.private_ip or "?" for i in cluster.instances)
    console.print(f"hosts (private): {hosts}", highlight=False)
    console.print(f"cost: {_money(cost)}/hour ({'on-demand upper bound' if spot else 'on demand'}, "
                  f"prices of {prices.region} as of {prices.as_of})", highlight=False)  # fmt: skip
    console.print(f"next: ccpt train --ec2-tag {tag} -- ...", highlight=False, markup=False)


@app.command("ls", epilog=examples("ccpt ec2 ls", "ccpt ec2 ls --tag job=gpt --json"))
def ls(
    tag: str = typer.Option(None, "--tag", help="Only instances tagged KEY=VALUE."),
    json_output: bool = typer.Option(False, "--json", help="Print the instances as JSON."),
    region: str = AWS_REGION,
    profile: str = AWS_PROFILE,
    endpoint_url: str = AWS_ENDPOINT,
) -> None:
    """List instances that are not terminated: id, type, state, IPs, age, cost per hour."""
    from ccpt.launch.ec2 import load_prices, parse_tag

    parsed = parse_tag(tag) if tag else None
    instances = _client(region, profile, endpoint_url).instances(parsed)
    prices = load_prices()
    if json_output:
        print_json([i.to_dict(prices) for i in instances])
        return
    title = f"EC2 instances tagged {tag}" if tag else "EC2 instances"
    console.print(_instance_table(title, instances, prices))
    total = sum(prices.hourly(i.type) or 0.0 for i in instances if i.state == "running")
    console.print(
        f"{len(instances)} instance(s); running ones cost about {_money(total)}/hour", highlight=False
    )


@app.command("down", epilog=examples("ccpt ec2 down --tag job=gpt", "ccpt ec2 down --tag job=gpt --yes"))
def down(
    tag: str = typer.Option(..., "--tag", help="Terminate the instances tagged KEY=VALUE (only those)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before terminating."),
    region: str = AWS_REGION,
    profile: str = AWS_PROFILE,
    endpoint_url: str = AWS_ENDPOINT,
) -> None:
    """Terminate every instance with the tag, then delete the groups ccpt made for it."""
    from ccpt.launch.ec2 import load_prices, parse_tag

    parsed = parse_tag(tag)
    client = _client(region, profile, endpoint_url)
    instances = client.instances(parsed)
    if not instances:
        console.print(f"no instances tagged {tag} in {client.region}", highlight=False)
        notes = client.terminate([], parsed)
    else:
        console.print(_instance_table(f"to terminate ({tag})", instances, load_prices()))
        if not yes and not typer.confirm(
            f"Terminate these {len(instances)} instance(s)?", default=False, err=True
        ):
            raise CcptError("nothing terminated", hint="pass --yes to skip the question", exit_code=1)
        notes = client.terminate(instances, parsed)
        console.print(f"terminated {len(instances)} instance(s) tagged {tag}", highlight=False)
    for note in notes:
        console.print(f"[dim]{note}[/dim]", highlight=False)
