"""A tiny, real DDP training job for launch tests: linear regression on synthetic data (gloo).

Flags let a test make one rank fail at a given step, slow the steps down, print many lines,
or save a checkpoint, so the launcher's failure handling and teardown meet a real job.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

FAILURE_WAIT_S = 120.0
KEPT_UNTIL_EXIT: list[object] = []  # see the end of main()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to wait after each step")
    parser.add_argument("--fail-rank", type=int, default=-1, help="-2: every rank")
    parser.add_argument("--fail-step", type=int, default=-1)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--fail-once", default="", help="fail only while this marker file is absent")
    parser.add_argument("--save", default="", help="rank 0 saves the weights here at the end")
    return parser.parse_args()


def fail_at(step: int, args: argparse.Namespace) -> None:
    """Exit with --exit-code, unless --fail-once's marker shows this rank already did once."""
    rank = os.environ["RANK"]
    marker = f"{args.fail_once}.{rank}"
    if args.fail_once and os.path.exists(marker):
        return
    if args.fail_once:
        open(marker, "w").close()
        if args.fail_rank == -2:
            # Every rank is to fail once: wait until each has marked it, or torchrun, seeing the
            # first exit, could stop a slower rank before it ever failed.
            markers = [f"{args.fail_once}.{r}" for r in range(int(os.environ["WORLD_SIZE"]))]
            deadline = time.monotonic() + 60
            while not all(map(os.path.exists, markers)) and time.monotonic() < deadline:
                time.sleep(0.05)
    print(f"rank {rank} fails on purpose at step {step}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Leave at once with exactly this code: a normal exit runs the process group's C++ teardown,
    # which gloo can turn into an abort (SIGABRT) that torchrun would then report instead.
    os._exit(args.exit_code)


def main() -> None:
    args = parse_args()
    if args.fail_step == 0 and args.fail_rank in (int(os.environ["RANK"]), -2):
        fail_at(0, args)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(rank)
    inputs = torch.randn(64, 4, generator=generator)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    print(f"rank {rank} of {world} on {os.environ.get('CCPT_NODE_RANK', '?')} ready", flush=True)
    for step in range(1, args.max_steps + 1):
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step} loss {loss.item():.4f} rank {rank}", flush=True)
        if step == args.fail_step and args.fail_rank >= 0:
            if rank == args.fail_rank:
                fail_at(step, args)
            # The other ranks wait outside any collective until torchrun stops them. Were they
            # to enter the next all-reduce, gloo would abort them as the peer's socket closes,
            # and torchrun could observe that abort first and blame the wrong rank.
            time.sleep(FAILURE_WAIT_S)
        time.sleep(args.sleep)
    if rank == 0 and args.save:
        torch.save(model.module.state_dict(), args.save)
    # Meet before leaving: with gloo, a rank that tears down while a peer is still in its last
    # collective can abort ("terminate called without an active exception") and fail a good job.
    # The barrier's Work is kept to the end: freed last by a gloo worker thread, it takes the GIL
    # while the main thread, destroying the group, joins that thread holding it (a hang at exit).
    finished = dist.barrier(async_op=True)
    finished.wait()
    KEPT_UNTIL_EXIT.append(finished)
    dist.destroy_process_group()
    print(f"rank {rank} done", flush=True)


if __name__ == "__main__":
    main()
