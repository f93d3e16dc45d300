"""The reference trainer for `train_throughput.py`: Hugging Face `Trainer`, bf16, defaults.

Runs GPT-2 (random init from a config) on random tokens with `Trainer` and prints one JSON line:
tokens/s over the timed steps (warm-up excluded), peak GPU memory, parameter count. Run as its
own process so its memory statistics and compile caches do not touch the other trainer's.

    python benchmarks/hf_trainer_reference.py --batch 16 --steps 40 --warmup 10 [--tiny] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

GPT2_124M = {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50304}
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 128, "vocab_size": 512}


class RandomTokens(torch.utils.data.Dataset):
    """Uniform random token ids; labels equal inputs (GPT2LMHeadModel shifts them)."""

    def __init__(self, length: int, seq_len: int, vocab_size: int) -> None:
        self.length, self.seq_len, self.vocab_size = length, seq_len, vocab_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(index)
        ids = torch.randint(0, self.vocab_size, (self.seq_len,), generator=generator)
        return {"input_ids": ids, "labels": ids}


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step, synchronised so GPU work is counted where it happens."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.step_times.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output-dir", default="/tmp/hf-trainer-reference")
    args = parser.parse_args()

    shape = TINY if args.tiny else GPT2_124M
    model = GPT2LMHeadModel(GPT2Config(**shape))
    seq_len = shape["n_positions"]
    cuda = args.device == "cuda"
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        bf16=cuda,
        use_cpu=not cuda,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    timer = StepTimer()
    dataset = RandomTokens(args.batch * args.steps, seq_len, shape["vocab_size"])
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, callbacks=[timer])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed = timer.step_times[args.warmup :]
    tokens_per_step = args.batch * seq_len
    result = {
        "trainer": "hf-trainer",
        "device": args.device,
        "batch": args.batch,
        "seq_len": seq_len,
        "timed_steps": len(timed),
        "tokens_per_s": tokens_per_step * len(timed) / sum(timed),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "params": sum(p.numel() for p in model.parameters()),
        "shape": shape,
        "torch": torch.__version__,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
