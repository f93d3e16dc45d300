"""The training loop: it learns, it saves and resumes exactly, it stops when asked, it runs under DDP."""

from __future__ import annotations

import itertools
import math
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils.data import Subset

import metrics
from config import Config, ProjectError
from conftest import SHORT_RUN_STEPS, TINY, make_trainer, read_records, run_cli, run_script, set_flags
from data import TaskData
from network import build_model
from trainer import MetricsLog, Trainer, learning_rate, load_trained_model

# A task that compares the trained model with the one it started from (domain adaptation) has it
# evaluated at step 0, before the first step.
STARTING_EVALUATIONS = [0] if hasattr(metrics, "compare_to_start") else []


def test_loss_goes_down_over_a_short_run(config: Config, data: TaskData, tmp_path: Path) -> None:
    trainer = make_trainer(replace(config, max_steps=SHORT_RUN_STEPS, log_every=5), data, tmp_path / "run")
    trainer.fit()
    losses = [r["loss"] for r in read_records(tmp_path / "run") if r["kind"] == "train"]
    assert len(losses) == SHORT_RUN_STEPS // 5
    assert losses[-1] < 0.8 * losses[0]


def test_overfits_a_single_batch(config: Config, data: TaskData) -> None:
    torch.manual_seed(0)
    model = build_model(config, data.preprocessor)
    inputs, targets = next(iter(torch.utils.data.DataLoader(data.train, batch_size=8)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    # Training mode (batch norms normalise as they do in training) without dropout: the same
    # batch must become easy. (In eval mode a batch norm applies its initial statistics, which
    # leaves a detector's deep layers unnormalised: it crawled to a third of its first loss.)
    for module in model.modules():
        module.train(not isinstance(module, torch.nn.modules.dropout._DropoutNd))
    first = None
    for _ in range(100):
        torch.manual_seed(1)  # the same random draws each step: a masked autoencoder hides the same patches
        _, loss = model(inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.1 * first


def test_learning_rate_warms_up_then_decays_to_the_floor(config: Config) -> None:
    config = replace(config, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    rates = [learning_rate(step, config, total_steps=100) for step in range(100)]
    assert rates[0] == pytest.approx(0.1)
    assert max(rates) == pytest.approx(1.0)
    assert rates.index(max(rates)) == 9
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert rates[-1] == pytest.approx(0.1, abs=1e-3)


def test_metrics_log_has_train_eval_and_final_records(config: Config, data: TaskData, tmp_path: Path) -> None:
    make_trainer(replace(config, max_steps=10), data, tmp_path / "run").fit()
    records = read_records(tmp_path / "run")
    kinds = [r["kind"] for r in records]
    assert kinds.count("train") == 2 and kinds.count("eval") == 1 + len(STARTING_EVALUATIONS)
    assert kinds[-1] == "final"
    train = next(r for r in records if r["kind"] == "train")
    assert {"step", "epoch", "loss", "lr", "grad_norm", "elapsed_s"} <= set(train)
    assert any(key.endswith("_per_s") for key in train)
    final = records[-1]
    assert {"eval_loss", "train_val_gap", "parameters", "elapsed_s", "world_size"} <= set(final)


def test_saved_model_loads_back_with_identical_outputs(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    trainer = make_trainer(replace(config, max_steps=10), data, tmp_path / "run")
    trainer.fit()  # ends holding the saved (best) weights
    _, _, loaded, step = load_trained_model(tmp_path / "run", torch.device("cpu"))
    inputs, _ = next(iter(torch.utils.data.DataLoader(data.val, batch_size=4)))
    trainer.raw_model.eval()
    with torch.no_grad():
        assert torch.equal(trainer.raw_model(inputs)[0], loaded(inputs)[0])
    assert step == 10
    assert not list((tmp_path / "run").glob("*.tmp")), "atomic writes leave no temporary files"
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["state"]["step"] == 10 and checkpoint["optimizer"]["state"]


def test_resume_reproduces_an_uninterrupted_run(config: Config, data: TaskData, tmp_path: Path) -> None:
    config = replace(config, max_steps=12, eval_every=4, log_every=2)
    straight = make_trainer(config, data, tmp_path / "straight")
    straight.fit()

    interrupted = make_trainer(config, data, tmp_path / "resumed")
    assert interrupted.fit(stop_at_step=6) is None
    resumed = make_trainer(config, data, tmp_path / "resumed")
    resumed.load_checkpoint()
    assert resumed.state.step == 6
    resumed.fit()

    for (name, a), b in zip(
        straight.raw_model.state_dict().items(), resumed.raw_model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    losses = [
        [r["loss"] for r in read_records(tmp_path / d) if r["kind"] == "train"]
        for d in ("straight", "resumed")
    ]
    assert losses[0] == losses[1]


def test_early_stopping_ends_a_run_that_stopped_improving(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    config = replace(config, lr=0.0, max_steps=100, eval_every=2, patience=2)
    trainer = make_trainer(config, data, tmp_path / "run")
    final = trainer.fit()
    assert trainer.state.step == 6  # evaluations at 2 (best), 4 and 6 (no better): stop
    assert final is not None and read_records(tmp_path / "run")[-1]["kind"] == "final"


def test_ctrl_c_stops_at_the_next_log_step_with_a_checkpoint(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    class InterruptedTrainer(Trainer):
        def train_step(self, batches):
            if self.state.step == 3:
                signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C
            return super().train_step(batches)

    trainer = make_trainer(
        replace(config, max_steps=50, log_every=5), data, tmp_path / "run", InterruptedTrainer
    )
    assert trainer.fit() is None
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["state"]["step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_loss_that_is_no_longer_a_number_halts_the_run_and_keeps_the_last_checkpoint(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    class DivergingTrainer(Trainer):
        def train_step(self, batches):
            loss, items, grad_norm = super().train_step(batches)
            return (loss * float("nan") if self.state.step == 6 else loss), items, grad_norm  # step 7

    run_dir = tmp_path / "run"
    config = replace(config, max_steps=40, log_every=2, eval_every=4)
    trainer = make_trainer(config, data, run_dir, DivergingTrainer)
    with pytest.raises(ProjectError) as raised:
        trainer.fit()
    message = str(raised.value)
    assert message.startswith("the training loss became nan in steps 7-8 ")
    resume = f"python src/runner.py train --resume run --lr {config.lr / 3:.2g}"
    assert f"checkpoint of step 4 is kept: resume from it with a lower rate, {resume}" in message
    last = read_records(run_dir)[-1]
    assert last["kind"] == "train" and last["step"] == 8 and math.isnan(last["loss"])
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["step"] == 4

    # Resumed as the message says, the run trains steps 5-8 again and its log holds them once.
    resumed = make_trainer(replace(config, lr=config.lr / 3), data, run_dir)
    resumed.load_checkpoint()
    assert resumed.fit() is not None
    train_steps = [r["step"] for r in read_records(run_dir) if r["kind"] == "train"]
    assert train_steps == list(range(2, 41, 2))
    assert all(math.isfinite(r["loss"]) for r in read_records(run_dir) if "loss" in r)


@pytest.mark.slow
def test_two_processes_train_with_ddp_under_torchrun(tmp_path: Path) -> None:
    overrides = {**TINY, "runs_dir": str(tmp_path), "eval_every": "4"}
    result = run_script(
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "src/runner.py", "train", "--max-steps", "4", "--run-name", "ddp", *set_flags(overrides),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    final = read_records(tmp_path / "ddp")[-1]
    assert final["kind"] == "final" and final["world_size"] == 2


def test_a_resumed_log_forgets_steps_after_the_checkpoint_and_a_line_cut_short(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", enabled=True)
    for step in (2, 4, 6):
        log.write("train", step=step, loss=1.0)
    with log.path.open("a") as file:
        file.write('{"kind": "train", "st')  # the process was killed mid-write
    log.drop_after(4)
    assert [r["step"] for r in read_records(tmp_path)] == [2, 4]
    log.write("train", step=6, loss=0.5)
    assert [r["step"] for r in read_records(tmp_path)] == [2, 4, 6]


@pytest.mark.slow
def test_every_process_halts_at_the_same_step_when_the_loss_diverges(tmp_path: Path) -> None:
    """The processes agree on the logged loss through one all-reduce, so all of them stop together
    (one that went on alone would wait for the others in its next collective until timeout)."""
    overrides = {**TINY, "runs_dir": str(tmp_path), "lr": "1e30", "grad_clip": "0", "warmup_steps": "0"}
    result = run_script(
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "src/runner.py", "train", "--max-steps", "40", "--run-name", "ddp", *set_flags(overrides),
        "--set", "log_every=2",
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.count("error: the training loss became nan in steps 1-2") == 1, result.stderr[-3000:]
    assert [r["step"] for r in read_records(tmp_path / "ddp")] == [*STARTING_EVALUATIONS, 2]


def test_a_training_split_smaller_than_a_batch_is_refused(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    small = replace(data, train=Subset(data.train, range(3)))
    with pytest.raises(ProjectError, match="fewer than batch_size"):
        make_trainer(config, small, tmp_path / "run")


def test_a_runs_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """A path the system refuses (here a folder inside a file) is the user's to fix: its reason and
    the path, not a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("train", "--max-steps", "1", *set_flags({**TINY, "runs_dir": str(blocker / "runs")}))
    assert result.returncode == 2
    assert result.stderr.startswith("error: Not a directory: ") and str(blocker) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
