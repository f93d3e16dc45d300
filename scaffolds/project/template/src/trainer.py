"""The training loop: plain PyTorch, one file, readable top to bottom.

Runs as one process, or as one process per GPU under torchrun (DDP: NCCL on CUDA, gloo on CPU).
Each optimizer step runs `grad_accum_steps` micro-batches (bf16 autocast on CUDA), clips the
gradient norm and steps AdamW (fused on CUDA) at a learning rate that warms up linearly and then
follows a cosine down to lr * min_lr_ratio. Every `eval_every` steps the model is evaluated on
the validation split: the best weights so far go to model.pt (what predict, serve and check
use), the whole training state to checkpoint.pt (what `train --resume` continues from), both
written atomically, and training stops early after `patience` evaluations without improvement.

metrics.jsonl in the run directory gets one JSON object per line, readable while training runs:
  {"kind": "train", "step", "epoch", "loss", "lr", "grad_norm", "samples_per_s" or "tokens_per_s", ...}
  {"kind": "eval",  "step", "eval_loss", "accuracy" ..., "best": true when model.pt was updated}
  {"kind": "final", "step", the saved model's metrics, "train_val_gap", "parameters", "elapsed_s", ...}
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Subset

import metrics
from config import Config, ProjectError
from data import TaskData, load_preprocessor
from loading import build_loader
from network import build_model, count_parameters
from saved_weights import FINGERPRINT, extra_fields, restore, weights_to_save

# Dense bf16 peak of one GPU, for model-FLOPs utilisation (MFU) in the training log.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12}


# --- Where this process runs ---------------------------------------------------------------


@dataclass
class Runtime:
    """This process's place in the job (rank among torchrun's processes), its device and numerics."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    bf16: bool
    compile: bool

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


Inputs = torch.Tensor | tuple[torch.Tensor, ...]  # a chart and its question are two tensors


def to_device(inputs: Inputs, device: torch.device, non_blocking: bool = False) -> Inputs:
    """A batch's inputs on `device`: one tensor, or each of several (pixels and question ids)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=non_blocking)
    return tuple(part.to(device, non_blocking=non_blocking) for part in inputs)


def setup_runtime(config: Config) -> Runtime:
    """Join torchrun's process group when launched by torchrun (it sets RANK and WORLD_SIZE).

    `config` must be resolved (config.resolve_auto): no "auto" left in device or precision.
    """
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and config.distributed != "ddp":
        raise ProjectError(
            "launched by torchrun but distributed=none; use --set distributed=ddp or plain python"
        )
    device = torch.device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls (outside autocast) on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    if world_size > 1:
        # device_id binds NCCL to this process's GPU up front (and barriers stop warning they guess it).
        cuda = device.type == "cuda"
        dist.init_process_group(backend="nccl" if cuda else "gloo", device_id=device if cuda else None)
    return Runtime(
        rank=rank,
        local_rank=local_rank,
        world_size=world_size,
        device=device,
        bf16=config.precision == "bf16" and device.type == "cuda",
        compile=config.compile == "true",
    )


def has_float8_tensor_cores() -> bool:
    """Whether this machine's GPU multiplies float8 on its tensor cores: compute capability 8.9
    (Ada) or later (Hopper is 9.0)."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


_KEPT_UNTIL_EXIT: list[object] = []  # see wait_for_every_process


def wait_for_every_process(runtime: Runtime) -> None:
    """A barrier across torchrun's processes (nothing to wait for in a single process).

    Its Work is kept until the process exits: were a gloo worker thread to drop the last
    reference, it would free the barrier's tensor, which takes the GIL, and if the main thread is
    destroying the process group just then (which joins that thread with the GIL held), neither
    moves again and the process hangs, after a finished run or on an error path.
    """
    if runtime.distributed:
        barrier = dist.barrier(async_op=True)
        barrier.wait()
        _KEPT_UNTIL_EXIT.append(barrier)


def teardown_runtime(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


# --- Small components ----------------------------------------------------------------------


def build_optimizer(model: nn.Module, config: Config, fused: bool) -> torch.optim.AdamW:
    """AdamW that decays matrices and kernels but not biases and norm scales (as GPT-2 did). With
    `layer_lr_decay` below 1 (a setting of the kinds that fine-tune encoders), each weight's rate is
    lr times the decay to the power of how many layers it sits below the top (model.layer_depths):
    each group's `lr_scale`, which the schedule multiplies in."""
    decay = getattr(config, "layer_lr_decay", 1.0)
    if decay < 1 and not hasattr(model, "layer_depths"):
        raise ProjectError(f"layer_lr_decay={decay} needs a model that numbers its layers; set it to 1")
    depths = model.layer_depths() if decay < 1 else {}
    top = max(depths.values(), default=0)
    grouped: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, weight in model.named_parameters():
        if weight.requires_grad:
            scale = decay ** (top - depths.get(name, top))
            grouped.setdefault((weight.dim() >= 2, scale), []).append(weight)
    # Decayed weights first, then the fastest first: one order of groups whatever the model's.
    keys = sorted(grouped, key=lambda key: (not key[0], -key[1]))
    groups = [
        {"params": grouped[key], "weight_decay": config.weight_decay if key[0] else 0.0, "lr_scale": key[1]}
        for key in keys
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.adam_beta2), fused=fused)


def learning_rate(step: int, config: Config, total_steps: int) -> float:
    """Linear warm-up (at most a fifth of the run), then cosine decay to lr * min_lr_ratio."""
    warmup = min(config.warmup_steps, total_steps // 5)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    min_lr = config.lr * config.min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - min_lr)


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temporary file, then rename over `path`: a crash never leaves a torn file."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def read_saved(path: Path, device: torch.device | str) -> dict:
    """What `atomic_save` wrote to `path`, or one line on why it cannot be read: saving never tears a
    file, but a copy from another machine can break off, and a file can be another program's."""
    unreadable = ProjectError(
        f"{path} cannot be read: it is cut short, damaged or not a file this project saved; "
        "copy it again, or train the run again"
    )
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, torch.OutOfMemoryError):  # the file is fine: say what really failed
        raise
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        raise unreadable from None
    # A file torch can read that holds something else (a bare tensor, another program's dict).
    if not isinstance(saved, dict) or "model" not in saved:
        raise unreadable
    return saved


class MetricsLog:
    """metrics.jsonl: each record appended and flushed at once, so dashboards can follow a run."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled

    def write(self, kind: str, **values: object) -> None:
        if self.enabled:
            with self.path.open("a") as file:
                file.write(json.dumps({"kind": kind, "time": round(time.time(), 3), **values}) + "\n")

    def drop_after(self, step: int) -> None:
        """Forget the records of steps after `step`, and any line cut short. A run resumed from a
        checkpoint trains those steps again; what its last session logged past the checkpoint (it
        was killed, or halted on a NaN loss) would otherwise stay in the curves twice."""
        if not self.enabled or not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.endswith("\n") and record_step(line) <= step]
        if len(kept) < len(lines):
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_text("".join(kept))
            partial.replace(self.path)


def record_step(line: str) -> float:
    """The step of one metrics.jsonl line; a damaged line counts as after every step."""
    try:
        return json.loads(line).get("step", 0)
    except ValueError:
        return math.inf


class ProgressDisplay:
    """A rich progress bar with the latest loss on rank 0; silent on the other ranks."""

    def __init__(self, total: int, completed: int, enabled: bool):
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            disable=not enabled,
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, status="")

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, step: int, status: str | None = None) -> None:
        fields = {"status": status} if status is not None else {}
        self.progress.update(self.task, completed=step, **fields)

    def note(self, text: str) -> None:
        if self.enabled:
            self.progress.console.print(text, soft_wrap=True)


def shown_scores(results: dict[str, float]) -> str:
    """An evaluation's scores on one line of the training display."""
    return "  ".join(f"{k} {v:.4f}" for k, v in results.items() if isinstance(v, float))


def model_flops_utilisation(model: nn.Module, tokens_per_s: float, runtime: Runtime) -> float | None:
    """Achieved model FLOP/s over the GPUs' peak, when the model can count its FLOPs per token."""
    flops_per_token = getattr(model, "flops_per_token", None)
    if flops_per_token is None or not runtime.cuda:
        return None
    name = torch.cuda.get_device_name(runtime.device)
    peak = next((flops for gpu, flops in PEAK_BF16_FLOPS.items() if gpu in name), None)
    return flops_per_token() * tokens_per_s / (peak * runtime.world_size) if peak else None


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    data: TaskData,
    runtime: Runtime,
    max_batches: int = 0,
) -> dict[str, float]:
    """Metrics over a split (its first `max_batches` batches if set), summed across processes."""
    was_training = model.training
    model.eval()
    counters = metrics.new_metrics(data, runtime.device)
    for index, (inputs, targets) in enumerate(loader):
        if max_batches and index >= max_batches:
            break
        inputs, targets = to_device(inputs, runtime.device), targets.to(runtime.device)
        with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=runtime.bf16):
            # What the model gives in eval mode for its metrics: logits, or for a captioner the
            # words it wrote (a caption is scored as a whole, not word by word against a reference).
            outputs, loss = model(inputs, targets)
        counters.update(outputs, targets, loss)
    if runtime.distributed:
        counters.all_reduce()
    model.train(was_training)
    return counters.compute()


def load_trained_model(run_dir: Path, device: torch.device) -> tuple[Config, object, nn.Module, int]:
    """A run's config, preprocessing and best model (model.pt), in eval mode on `device`."""
    config = Config.load(run_dir / "config.json")
    preprocessor = load_preprocessor(run_dir)
    saved = read_saved(run_dir / "model.pt", device)
    # Trained weights saved alone (LoRA's adapters) go beside frozen ones built from their source.
    model = build_model(config, preprocessor, load_weights=FINGERPRINT in saved)
    try:
        restore(model, saved, run_dir / "model.pt")
    except (KeyError, RuntimeError) as error:  # config.json edited after training, or another run's file
        # PyTorch's message heads a list ("size mismatch for ...: copying a param with shape ..."):
        # its first item says what differs.
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else lines[0]
        raise ProjectError(
            f"{run_dir / 'model.pt'} does not fit the model {run_dir / 'config.json'} describes ({reason})"
        ) from None
    return config, preprocessor, model.to(device).eval(), saved["step"]


class TrainedModel:
    """A finished run's best model loaded for predictions on `device` ("auto": a GPU when there is
    one, else the CPU), with the run's config and preprocessing and the step it was saved at.

    Each task's `Predictor` (predictor.py) starts from it, so that `runner.py predict`, the server
    and `runner.py check` find run_dir, device, config, preprocessor, model and step under the same
    names whatever the task, and a predictor adds only what its task needs."""

    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.run_dir = run_dir
        self.device = torch.device(device)
        self.config, self.preprocessor, self.model, self.step = load_trained_model(run_dir, self.device)


# --- The trainer ---------------------------------------------------------------------------


@dataclass
class TrainState:
    """What a checkpoint must hold besides weights and optimizer to continue exactly."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # batches of the current epoch already trained on
    best_score: float | None = None
    evals_without_improvement: int = 0
    elapsed_s: float = 0.0  # training time of earlier sessions of this run
    # The validation scores of the model before its first step, for a task whose metrics compare
    # the trained model with the one it started from (metrics.compare_to_start).
    start_scores: dict[str, float] | None = None


class Trainer:
    def __init__(self, config: Config, data: TaskData, model: nn.Module, run_dir: Path, runtime: Runtime):
        self.config, self.data, self.run_dir, self.runtime = config, data, run_dir, runtime
        self.raw_model = model.to(runtime.device)  # what gets saved; the wrappers below share its weights
        self.model: nn.Module = self.raw_model
        self.ddp: DistributedDataParallel | None = None
        if runtime.distributed:
            device_ids = [runtime.device.index] if runtime.cuda else None
            self.ddp = DistributedDataParallel(
                self.raw_model, device_ids=device_ids, gradient_as_bucket_view=True
            )
            self.model = self.ddp
        if runtime.compile:
            self.model = torch.compile(self.model)
        self.optimizer = build_optimizer(self.raw_model, config, fused=runtime.cuda)
        self.saved_fields = extra_fields(self.raw_model)  # the frozen weights' fingerprint, if any

        shard = {"rank": runtime.rank, "world_size": runtime.world_size, "pin_memory": runtime.cuda}
        self.train_loader = build_loader(data.train, config, train=True, **shard)
        self.val_loader = build_loader(data.val, config, train=False, **shard)
        # As many training examples as validation ones, to measure the train-val gap.
        train_sample = Subset(data.train, range(min(len(data.train), len(data.val))))
        self.train_eval_loader = build_loader(train_sample, config, train=False, **shard)
        if len(self.train_loader) == 0:
            raise ProjectError(
                f"the training split has {len(data.train)} examples per process, "
                f"fewer than batch_size={config.batch_size}; lower --batch-size"
            )
        steps_per_epoch = max(1, len(self.train_loader) // config.grad_accum_steps)
        self.total_steps = config.max_steps or config.epochs * steps_per_epoch

        self.state = TrainState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.log = MetricsLog(run_dir / "metrics.jsonl", enabled=runtime.is_main)
        self.display = ProgressDisplay(self.total_steps, 0, enabled=runtime.is_main)
        self.stop_requested = False
        self.checkpoint_step: int | None = None  # the step checkpoint.pt holds, once there is one
        self.session_start = time.perf_counter()
        torch.manual_seed(config.seed + runtime.rank)  # different dropout masks on each rank

    # The loop ---------------------------------------------------------------------------

    def fit(self, stop_at_step: int | None = None) -> dict[str, float] | None:
        """Train to the last step (or until early stopping) and return the final record.

        `stop_at_step` (or Ctrl-C / SIGTERM) ends this session early with a checkpoint to resume
        from and returns None; the learning-rate schedule still runs to the last step.
        """
        config = self.config
        batches = self.batches()
        self.display.update(self.state.step)
        loss_sum, window_items, window_start = 0.0, 0, time.perf_counter()
        with self.display, self.stop_on_signals():
            if hasattr(metrics, "compare_to_start") and self.state.start_scores is None:
                self.state.start_scores = self.starting_scores()
                if self.state.start_scores:  # (a baseline switched off gives none)
                    self.log.write("eval", step=0, epoch=0, best=False, **self.state.start_scores)
                    what = getattr(metrics, "BASELINE", "the starting model")
                    self.display.note(f"step 0  {shown_scores(self.state.start_scores)}  ({what})")
                window_start = time.perf_counter()
            while self.state.step < self.total_steps:
                lr = learning_rate(self.state.step, config, self.total_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
                loss, items, grad_norm = self.train_step(batches)
                self.state.step += 1
                step = self.state.step
                loss_sum, window_items = loss_sum + loss, window_items + items

                if step % config.log_every == 0 or step == self.total_steps:
                    steps_in_window = (step - 1) % config.log_every + 1
                    mean_loss, stop = self.agree_on_window(loss_sum, steps_in_window)
                    self.log_training(step, mean_loss, lr, grad_norm, window_items, window_start)
                    if not math.isfinite(mean_loss):
                        first_step = step - steps_in_window + 1
                        message = self.divergence_message(mean_loss, first_step, step)
                        raise ProjectError(message, every_process=True)
                    loss_sum, window_items, window_start = 0.0, 0, time.perf_counter()
                    if stop:
                        self.save_checkpoint()
                        self.display.note(f"stopped at step {step}; resume with `runner.py train --resume`")
                        return None
                if step % config.eval_every == 0 or step == self.total_steps:
                    if self.evaluate_and_checkpoint():
                        self.display.note(f"early stop: no improvement in {config.patience} evaluations")
                        break
                    window_start = time.perf_counter()  # keep evaluation time out of throughput
                if step == stop_at_step:
                    self.save_checkpoint()
                    return None
        return self.finish()

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Training batches, epoch after epoch, starting where a resumed run left off."""
        sampler = self.train_loader.sampler
        while True:
            sampler.set_epoch(self.state.epoch)
            sampler.start = self.state.batches_in_epoch * self.config.batch_size
            for batch in self.train_loader:
                self.state.batches_in_epoch += 1
                yield batch
            self.state.epoch += 1
            self.state.batches_in_epoch = 0

    def train_step(self, batches: Iterator) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        """One optimizer step over `grad_accum_steps` micro-batches; gradients are averaged across
        processes only on the last micro-batch. Returns the mean loss, items seen, gradient norm."""
        accum, device = self.config.grad_accum_steps, self.runtime.device
        total_loss = torch.zeros((), device=device)
        items = 0
        for micro_step in range(accum):
            inputs, targets = next(batches)
            inputs, targets = to_device(inputs, device, True), targets.to(device, non_blocking=True)
            last = micro_step == accum - 1
            with self.ddp.no_sync() if self.ddp and not last else contextlib.nullcontext():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.runtime.bf16):
                    # Only the loss is kept: the logits (the largest tensor of a language model's
                    # step) are freed before backward instead of living through it.
                    loss = self.model(inputs, targets)[1]
                (loss / accum).backward()
            total_loss += loss.detach()
            items += metrics.items_in_batch(targets)
        grad_norm = None
        if self.config.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss / accum, items, grad_norm

    def log_training(
        self, step: int, loss: float, lr: float, grad_norm: torch.Tensor | None, items: int, since: float
    ) -> None:
        per_second = items * self.runtime.world_size / max(time.perf_counter() - since, 1e-9)
        record: dict[str, object] = {"step": step, "epoch": self.state.epoch, "loss": loss, "lr": lr}
        if grad_norm is not None:
            record["grad_norm"] = float(grad_norm)
        record[metrics.THROUGHPUT] = per_second
        mfu = model_flops_utilisation(self.raw_model, per_second, self.runtime)
        if mfu is not None:
            record["mfu"] = mfu
        if self.runtime.cuda:
            record["gpu_memory_gb"] = torch.cuda.max_memory_allocated(self.runtime.device) / 2**30
        record["elapsed_s"] = self.elapsed()
        self.log.write("train", **record)
        unit = metrics.THROUGHPUT.removesuffix("_per_s")
        self.display.update(step, f"loss {loss:.4f}  lr {lr:.2e}  {per_second:,.0f} {unit}/s")

    # Evaluation and checkpoints ---------------------------------------------------------

    def evaluate(self, loader: torch.utils.data.DataLoader) -> dict[str, float]:
        return evaluate_model(self.raw_model, loader, self.data, self.runtime, self.config.eval_batches)

    def starting_scores(self) -> dict[str, float]:
        """What the run is compared with at its end: the task's own baseline of the starting model
        where it has one (metrics.baseline_scores), else the starting model's validation scores."""
        if hasattr(metrics, "baseline_scores"):
            return metrics.baseline_scores(self.raw_model, self.data, self.config, self.runtime.device)
        return self.evaluate(self.val_loader)

    def compared_to_start(self, results: dict[str, float]) -> dict[str, float]:
        """`results` with the task's comparison against the starting model, where it has one."""
        if self.state.start_scores is None or not hasattr(metrics, "compare_to_start"):
            return results
        return results | metrics.compare_to_start(self.state.start_scores, results)

    def evaluate_and_checkpoint(self) -> bool:
        """Evaluate, keep the best weights and a checkpoint; True when early stopping says stop."""
        results = self.compared_to_start(self.evaluate(self.val_loader))
        score, best = results[metrics.MONITOR], self.state.best_score
        improved = best is None or (score > best if metrics.HIGHER_IS_BETTER else score < best)
        if improved:
            self.state.best_score, self.state.evals_without_improvement = score, 0
            self.best_weights = {
                k: v.detach().to("cpu", copy=True) for k, v in weights_to_save(self.raw_model).items()
            }
            if self.runtime.is_main:
                saved = {"model": self.best_weights, "step": self.state.step, **self.saved_fields}
                atomic_save(saved, self.run_dir / "model.pt")
        else:
            self.state.evals_without_improvement += 1
        self.log.write("eval", step=self.state.step, epoch=self.state.epoch, best=improved, **results)
        self.display.note(
            f"step {self.state.step}  {shown_scores(results)}" + ("  (saved)" if improved else "")
        )
        self.save_checkpoint()
        return self.config.patience > 0 and self.state.evals_without_improvement >= self.config.patience

    def elapsed(self) -> float:
        return self.state.elapsed_s + time.perf_counter() - self.session_start

    def save_checkpoint(self) -> None:
        """Everything `train --resume` needs, written by rank 0 (all ranks hold the same weights)."""
        self.checkpoint_step = self.state.step
        if not self.runtime.is_main:
            return
        state = asdict(self.state) | {"elapsed_s": self.elapsed()}
        checkpoint = {
            "model": weights_to_save(self.raw_model),
            **self.saved_fields,
            "optimizer": self.optimizer.state_dict(),
            "state": state,
            "rng": torch.get_rng_state(),
        }
        atomic_save(checkpoint, self.run_dir / "checkpoint.pt")

    def load_checkpoint(self) -> None:
        """Continue a run: weights, optimizer moments, step and data position, best model so far."""
        checkpoint = read_saved(self.run_dir / "checkpoint.pt", self.runtime.device)
        restore(self.raw_model, checkpoint, self.run_dir / "checkpoint.pt")
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.state = TrainState(**checkpoint["state"])
        self.checkpoint_step = self.state.step
        self.log.drop_after(self.state.step)
        if not self.runtime.distributed:  # each rank has its own RNG; only rank 0's was saved
            torch.set_rng_state(checkpoint["rng"].cpu())
        if (self.run_dir / "model.pt").exists():
            self.best_weights = read_saved(self.run_dir / "model.pt", "cpu")["model"]

    def finish(self) -> dict[str, float]:
        """Measure the saved model on the validation split and on as many training examples, and
        log it as the run's final record (what `runner.py check` reads)."""
        if self.best_weights is not None:
            best = {"model": self.best_weights, **self.saved_fields}
            restore(self.raw_model, best, self.run_dir / "model.pt")
        val = self.compared_to_start(self.evaluate(self.val_loader))
        train = self.evaluate(self.train_eval_loader)
        record: dict[str, float] = {
            **val,
            "train_" + metrics.MONITOR: train[metrics.MONITOR],
            "train_eval_loss": train["eval_loss"],
            "train_val_gap": metrics.generalization_gap(train, val),
            "parameters": count_parameters(self.raw_model),
            "trainable_parameters": count_parameters(self.raw_model, trainable_only=True),
            "elapsed_s": self.elapsed(),
            "world_size": self.runtime.world_size,
            "gpus": self.runtime.world_size if self.runtime.cuda else 0,
        }
        self.log.write("final", step=self.state.step, **record)
        return record

    # Stopping on request ----------------------------------------------------------------

    @contextlib.contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """Ctrl-C or SIGTERM (a spot instance's notice) ends the run at the next log step, with a
        checkpoint. A second Ctrl-C stops at once."""

        def request_stop(signum: int, frame: object) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def agree_on_window(self, loss_sum: torch.Tensor | float, steps: int) -> tuple[float, bool]:
        """The mean training loss of the last `steps` steps over every process, and whether any
        process was asked to stop. Under torchrun both come from one all-reduce, so every process
        sees the same loss and stops (or halts on a non-finite loss) at the same step."""
        if not self.runtime.distributed:
            return float(loss_sum) / steps, self.stop_requested  # float() waits for the GPU
        device = self.runtime.device
        totals = torch.stack(
            [
                torch.as_tensor(loss_sum, dtype=torch.float32, device=device),
                torch.tensor(float(self.stop_requested), device=device),
            ]
        )
        dist.all_reduce(totals)
        loss_total, stops = totals.tolist()
        return loss_total / steps / self.runtime.world_size, stops > 0

    def divergence_message(self, loss: float, first_step: int, last_step: int) -> str:
        """What to do when the training loss is no longer a number: the run halts at once rather
        than train on weights that are already NaN."""
        steps = f"step {last_step}" if first_step == last_step else f"steps {first_step}-{last_step}"
        lower_lr = f"--lr {self.config.lr / 3:.2g}"
        kept = (
            f"; its checkpoint of step {self.checkpoint_step} is kept: resume from it with a lower rate,"
            f" python src/runner.py train --resume {self.run_dir.name} {lower_lr}"
            if self.checkpoint_step is not None
            else f"; start again with a lower rate ({lower_lr})"
        )
        return (
            f"the training loss became {loss} in {steps} (learning rate {self.config.lr:g}, gradient clip"
            f" {self.config.grad_clip:g}): run {self.run_dir.name} stopped{kept}"
        )
