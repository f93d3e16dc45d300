"""The root `ccpt` app: registers the command groups and the global options.

This module is what `ccpt --help` loads, so it imports nothing heavy: every command module
imports its core (and torch, anthropic, boto3, copier ...) inside the function that runs.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from ccpt import __version__
from ccpt.commands import agent, ask, config, doctor, ec2, new, spec, train, typer_patches, update
from ccpt.commands.common import examples
from ccpt.errors import CcptError

typer_patches.skip_adapters_for_absent_values()  # running a subcommand need not import pydantic
typer_patches.hide_flag_types()  # `--dry-run`, not `--dry-run <bool>`, in help


class CcptGroup(TyperGroup):
    """Turns a `CcptError` into one line and its exit code, and Ctrl-C into exit 130.

    With `--debug` the exception propagates and Python prints the traceback.
    """

    def invoke(self, ctx: Any) -> Any:  # click's Context (Typer vendors click; its path is private)
        try:
            return super().invoke(ctx)
        except CcptError as exc:
            if ctx.params.get("debug"):
                raise
            from ccpt.commands.output import print_error

            print_error(exc.message, exc.hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if ctx.params.get("debug"):
                raise
            from ccpt.commands.output import print_error

            print_error("interrupted", "nothing was left half-done")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=CcptGroup,
    name="ccpt",
    help=(
        "[bold]ccpt[/bold] (Claude Code PyTorch): scaffold PyTorch + Hugging Face projects from "
        "task specs, consult a team of Claude specialists, and launch torchrun from one GPU to "
        "many EC2 nodes."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples(
        "ccpt new demo",
        'ccpt agent NetworkArchitect "fused QKV or separate projections?"',
        "ccpt train --nproc-per-node auto -- --max-steps 100",
    ),
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ccpt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="CCPT_DEBUG", help="Show full tracebacks instead of one-line errors."
    ),
) -> None:
    """Global options; each command resolves its own settings."""


app.command(
    "new",
    help="Render a complete, tested ML project from a task spec.",
    epilog=examples(
        "ccpt new demo",
        "ccpt new nlp --spec text-classification --pretend",
        "ccpt new lm --spec causal-lm --data precision=bf16 --defaults",
    ),
)(new.new)
app.command(
    "update",
    help="Bring template improvements into a project made by `ccpt new`, keeping your edits.",
    epilog=examples("ccpt update --pretend", "ccpt update demo", "ccpt update --data precision=bf16"),
)(update.update)
app.add_typer(
    spec.app,
    name="spec",
    help="Task specs (INVEST user stories with CRPG): list, show, new, check, prompt, convert.",
    epilog=examples(
        "ccpt spec list", "ccpt spec check specs/task.yaml", "ccpt spec convert lib.md -o specs.yaml"
    ),
)
app.add_typer(
    agent.app,
    name="agent",
    help="Consult one of the 15 specialist roles through Claude.",
    epilog=examples("ccpt agent list", 'ccpt agent NetworkArchitect "design a ViT patch embedding"'),
)
app.command(
    "ask",
    help="Let the Supervisor route a question to the right specialists and merge their answers.",
    epilog=examples('ccpt ask "fine-tune BERT with limited GPU memory"'),
)(ask.ask)
app.command(
    "train",
    help="Launch the project's training under torchrun, locally or over SSH on many hosts.",
    epilog=examples(
        "ccpt train -- --max-steps 60",
        "ccpt train --hosts node0,node1 -- --epochs 3",
        "ccpt train --hostfile hosts.txt --sync --env NCCL_DEBUG=INFO -- --max-steps 1000",
        "ccpt train --ec2-tag job=gpt --dry-run",
    ),
)(train.train)
app.add_typer(
    ec2.app,
    name="ec2",
    help="Start, list and stop tagged EC2 GPU instances for `ccpt train --ec2-tag`.",
    epilog=examples(
        "ccpt ec2 ls --tag team=ml", "ccpt ec2 up --count 2 --instance-type p5.48xlarge --tag job=gpt"
    ),
)
app.command("doctor", help=doctor.HELP, epilog=doctor.EPILOG)(doctor.doctor)
app.add_typer(config.app, name="config")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ccpt")
