"""One lever at a time on the generated causal-LM model (GPU): forward, backward, fused AdamW step.

Each variant runs in its own process (fresh compile cache and memory statistics) on the GPT of a
project rendered by `ccpt new --spec causal-lm`, GPT-2 124M shape (vocab 50304, context 1024),
random tokens, bf16 autocast, timed with CUDA events after warm-up. Variants are names joined by
'+'. b16/b32/b64 is the batch; alone, it runs the model as the project ships it. The levers:
- the loss: float (PyTorch's cross-entropy on float32-upcast logits), bf16ce (on the bf16
  logits), fusedce / flce (benchmarks/fused_losses.py: the gradient computed in the forward pass;
  flce fuses the output projection too; onepass: a Triton kernel computing both in one program
  per row, fused with the projection, w8 / w32 giving it 8 or 32 warps instead of 16), tritonce
  (the project's two Triton kernels, src/kernels.py); fp8head (the output projection's three
  matmuls in float8 around those kernels, as the project's float8_head setting runs them:
  benchmarks/fp8_head.py; the variants here build the GPT with that setting off);
- the model: bf16res (the residual stream in bf16 rather than float32 under autocast), detach
  (the logits returned detached, so the compiled backward builds no zero gradient for them);
- attention: cudnn (cuDNN and flash allowed; PyTorch's own priority still picks), cudnnfirst
  (cuDNN first, by `set_priority`), qkvsplit (queries, keys and values projected by three matmuls
  over row blocks of the one fused weight, so the backward pass needs no concatenation of their
  gradients);
- the MLP: ltgelu (GELU in cuBLASLt's matmul epilogues, forward and backward:
  benchmarks/gelu_epilogue.py), quackmlp (GELU in the epilogues of QuACK's CuTe-DSL GEMMs:
  benchmarks/quack_mlp.py; CCPT_QUACK_TUNED=1 autotunes their configurations);
- the step: clipscale (the gradient clipping folded into the fused AdamW kernel through its
  `grad_scale` input: the norm is still computed, but the gradients are not rewritten);
  wholegraph (the whole step, forward, backward, clipping and a capturable fused AdamW with its
  learning rate in a device tensor, captured once as one CUDA graph and replayed: no launch gaps
  between or inside the compiled graphs and the optimizer);
- inductor's fusion settings, each switched on: aggrfuse (aggressive_fusion: fuse kernels that
  share no reads too), combo (combo_kernels: independent small kernels launched as one), benchfuse
  (benchmark_fusion: a fusion kept only if it times faster), reorder (loop_ordering_after_fusion);
- compilation: coord (inductor's coordinate-descent tuning), maxauto (mode
  max-autotune-no-cudagraphs), gemmauto (only the matmuls autotuned, Triton templates against
  cuBLAS, so a winning template can take the next pointwise work into its epilogue; with tma,
  the persistent TMA templates too), graphs (mode
  reduce-overhead: CUDA graphs), eager (no compile).
With --profile each variant also prints the step's time by kind of kernel and its costliest GPU
kernels over three profiled steps (to see, say, which attention kernel really ran).

    python benchmarks/causal_lm_levers.py --project DIR b64 b64+bf16res+fusedce b64+bf16res+tritonce ...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PEAK_FLOPS = 989e12
INDUCTOR_SETTINGS = {
    "aggrfuse": "aggressive_fusion",
    "combo": "combo_kernels",
    "benchfuse": "benchmark_fusion",
    "reorder": "loop_ordering_after_fusion",
}


KERNEL_KINDS = (  # first match wins; names as PyTorch 2.11's profiler reports them on Hopper
    ("loss (the project's kernels.py)", ("_row_losses", "_logit_grads")),
    ("matmul", ("nvjet", "gemm", "cutlass", "xmma", "triton_tem")),
    ("attention", ("sdpa", "flash", "fmha", "attention")),
    ("optimizer", ("adam", "multi_tensor", "foreach", "norm_kernel")),
    ("embedding", ("embedding", "index", "sort", "radix", "scatter")),
    ("fused pointwise / reductions (inductor)", ("triton",)),
)


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    return next((kind for kind, marks in KERNEL_KINDS if any(m in lowered for m in marks)), "other")


def top_kernels(train_step, steps: int = 3, count: int = 28) -> list[str]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(steps):
            train_step(i)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    total = sum(e.self_device_time_total for e in events) or 1
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    by_kind: dict[str, float] = {}
    for e in events:
        kind = kernel_kind(e.key)
        by_kind[kind] = by_kind.get(kind, 0.0) + e.self_device_time_total
    kinds = [
        f"{t / total:6.1%} {t / steps / 1000:7.2f} ms/step  [{kind}]"
        for kind, t in sorted(by_kind.items(), key=lambda item: -item[1])
    ]
    step_kernels_ms = total / steps / 1000
    return (
        [f"{step_kernels_ms:7.2f} ms/step in GPU kernels"]
        + kinds
        + [
            f"{e.self_device_time_total / total:6.1%} {e.self_device_time_total / steps / 1000:7.2f} ms/step"
            f" x{e.count // steps:<3} {e.key[:110]}"
            for e in events[:count]
        ]
    )


FORWARD_LEVERS = {"float", "bf16ce", "fusedce", "flce", "tritonce", "onepass", "bf16res", "detach", "fp8head"}


def lever_forward(levers: set[str]):
    """GPT.forward as the project ships it, with the loss and model levers of `levers` in place.
    Unless a loss lever is named, the loss is PyTorch's on float32-upcast logits (`float`)."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).parent))
    if "tritonce" in levers:
        from kernels import cross_entropy as loss_function  # the project's src/ is on the path
    elif "fusedce" in levers:
        from fused_losses import fused_cross_entropy as loss_function
    elif "bf16ce" in levers:
        loss_function = F.cross_entropy
    else:

        def loss_function(logits, targets):  # fused by inductor
            return F.cross_entropy(logits.float(), targets)

    def forward(self, tokens, targets=None):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        x = self.dropout(x.to(torch.bfloat16) if "bf16res" in levers else x)
        for block in self.blocks:
            x = block(x)
        hidden, flat_targets = self.norm(x).view(-1, x.shape[-1]), targets.reshape(-1)
        if "flce" in levers:
            from fused_losses import fused_linear_cross_entropy

            return None, fused_linear_cross_entropy(hidden, self.lm_head.weight, flat_targets)
        if "fp8head" in levers:
            from kernels import float8_linear_cross_entropy

            return None, float8_linear_cross_entropy(hidden, self.lm_head.weight, flat_targets)[0]
        if "onepass" in levers:
            from fused_losses import one_pass_linear_cross_entropy

            warps = 8 if "w8" in levers else 32 if "w32" in levers else 16
            loss, logits = one_pass_linear_cross_entropy(hidden, self.lm_head.weight, flat_targets, warps)
            return logits, loss
        logits = self.lm_head(hidden)
        loss = loss_function(logits, flat_targets)
        return (logits.detach() if "detach" in levers else logits), loss

    return forward


def split_qkv_forward(self, x):
    """CausalSelfAttention.forward with q, k and v from three matmuls over the weight's row blocks."""
    import torch.nn.functional as F

    batch, time, channels = x.shape
    q, k, v = (
        F.linear(x, block).view(batch, time, self.n_head, channels // self.n_head).transpose(1, 2)
        for block in self.qkv.weight.split(channels, dim=0)
    )
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return self.proj(y.transpose(1, 2).contiguous().view(batch, time, channels))


def clip_in_optimizer_step(parameters, optimizer, max_norm: float):
    """clip_grad_norm_ then step, with the clipping done by the fused AdamW kernel: it divides each
    gradient by `grad_scale` as it reads it, so the gradients are read once less and not rewritten."""
    import torch

    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    optimizer.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)
    optimizer.step()
    return norm


def captured_step(train_step, tokens, optimizer, lr):
    """`train_step` captured as one CUDA graph over a static batch (after it ran, so compiled).

    As PyTorch's whole-network capture does it: a few steps on a side stream, gradients set to
    None so that the captured backward allocates them in the graph's pool, then the capture. Each
    replay writes the gradients afresh, so no zeroing is captured."""
    import torch

    static_tokens = tokens[0].clone()
    rate = lr.item()  # what a schedule would write into the tensor before each step

    def body() -> None:
        optimizer.zero_grad(set_to_none=True)
        train_step(0, zero_grad=False, batch_tokens=static_tokens)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            body()
    torch.cuda.current_stream().wait_stream(side)
    optimizer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()

    def replay(i: int) -> None:
        static_tokens.copy_(tokens[i % 4], non_blocking=True)
        lr.fill_(rate)
        graph.replay()

    return replay


def measure(project: Path, variant: str, steps: int, warmup: int, profile: bool = False) -> dict:
    sys.path.insert(0, str(project / "src"))
    import network
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    levers = set(variant.split("+"))
    batch = next(int(lever[1:]) for lever in levers if lever.startswith("b") and lever[1:].isdigit())
    torch.backends.cuda.matmul.allow_tf32 = True
    import torch._inductor.config

    if "coord" in levers:
        torch._inductor.config.coordinate_descent_tuning = True
    switched = {}  # each setting switched on, with its default in this torch
    for lever, setting in INDUCTOR_SETTINGS.items():
        if lever in levers:
            switched[setting] = getattr(torch._inductor.config, setting)
            setattr(torch._inductor.config, setting, True)
    if "gemmauto" in levers:
        torch._inductor.config.max_autotune_gemm = True
    if "tma" in levers:  # Hopper's persistent TMA matmul templates join the autotuning
        torch._inductor.config.triton.enable_persistent_tma_matmul = True
    device = torch.device("cuda")
    shape = network.GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    model = network.GPT(shape).to(device)
    if levers & FORWARD_LEVERS:
        network.GPT.forward = lever_forward(levers)
    if "qkvsplit" in levers:
        network.CausalSelfAttention.forward = split_qkv_forward
    if "ltgelu" in levers:
        sys.path.insert(0, str(Path(__file__).parent))
        from gelu_epilogue import choose_algorithms_from_environment, mlp_forward

        choose_algorithms_from_environment()
        network.MLP.forward = mlp_forward
    if "quackmlp" in levers:
        sys.path.insert(0, str(Path(__file__).parent))
        from quack_mlp import mlp_forward as quack_mlp_forward

        network.MLP.forward = quack_mlp_forward
    parameters = list(model.parameters())
    whole_graph = "wholegraph" in levers
    # A captured step reads its learning rate from a device tensor, refilled before each replay.
    lr = torch.tensor(6e-4, device=device) if whole_graph else 6e-4
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), fused=True, capturable=whole_graph
    )
    step_model = model
    if "eager" not in levers:
        mode = "max-autotune-no-cudagraphs" if "maxauto" in levers else None
        mode = "reduce-overhead" if "graphs" in levers else mode
        step_model = torch.compile(model, mode=mode)
    backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION] if "cudnn" in levers else None
    first = "cudnnfirst" in levers
    if first:
        backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
    tokens = torch.randint(0, 50257, (4, batch, 1025), device=device)

    last_loss = []  # the last step's loss (for a captured step, the graph's own output tensor)

    def train_step(i: int, zero_grad: bool = True, batch_tokens=None) -> None:
        batch_tokens = tokens[i % 4] if batch_tokens is None else batch_tokens
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if backends:
                with sdpa_kernel(backends, set_priority=first):
                    _, loss = step_model(batch_tokens[:, :-1], batch_tokens[:, 1:])
            else:
                _, loss = step_model(batch_tokens[:, :-1], batch_tokens[:, 1:])
        last_loss[:] = [loss.detach()]
        loss.backward()
        if "clipscale" in levers:
            clip_in_optimizer_step(parameters, optimizer, 1.0)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
        if zero_grad:
            optimizer.zero_grad(set_to_none=True)

    compile_start = time.perf_counter()
    for i in range(warmup):
        train_step(i)
    torch.cuda.synchronize()
    if whole_graph:
        train_step = captured_step(train_step, tokens, optimizer, lr)
    warmup_s = time.perf_counter() - compile_start
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(steps):
        train_step(i)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000
    tokens_per_s = steps * batch * 1024 / seconds
    peak_mem_gib = torch.cuda.max_memory_allocated() / 2**30
    return {
        "kernels": top_kernels(train_step) if profile else [],
        "variant": variant,
        "batch": batch,
        "tokens_per_s": tokens_per_s,
        "mfu": tokens_per_s * model.flops_per_token() / PEAK_FLOPS,
        "step_ms": seconds / steps * 1000,
        "peak_mem_gib": peak_mem_gib,
        "warmup_s": warmup_s,
        "switched": switched,
        "last_loss": float(last_loss[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="print each variant's costliest kernels")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline-s", type=float, default=540, help="skip variants that would start later")
    parser.add_argument("--overrun-s", type=float, default=60, help="how long a variant may run past it")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    if args.worker:
        result = measure(args.project, args.variants[0], args.steps, args.warmup, args.profile)
        print("RESULT " + json.dumps(result))
        return
    started = time.perf_counter()
    print(
        f"{'variant':<28} {'tokens/s':>10} {'MFU':>6} {'step ms':>8} {'peak GiB':>9} {'warm-up s':>9}"
        f" {'loss':>6}",
        flush=True,
    )
    for variant in args.variants:
        if time.perf_counter() - started > args.deadline_s:
            print(f"{variant:<28} skipped: past the deadline", flush=True)
            continue
        argv = [sys.executable, __file__, "--worker", "--project", str(args.project)]
        argv += ["--steps", str(args.steps), "--warmup", str(args.warmup), variant]
        argv += ["--profile"] if args.profile else []
        left = args.deadline_s + args.overrun_s - (time.perf_counter() - started)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            print(f"{variant:<28} stopped: ran past the deadline", flush=True)
            continue
        lines = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(f"{variant:<28} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        r = json.loads(lines[0])
        print(
            f"{variant:<28} {r['tokens_per_s']:>10,.0f} {r['mfu']:>6.1%} {r['step_ms']:>8.1f}"
            f" {r['peak_mem_gib']:>9.1f} {r['warmup_s']:>9.1f} {r['last_loss']:>6.3f}",
            flush=True,
        )
        for setting, default in r["switched"].items():
            print(f"    {setting}: default {default}, set True", flush=True)
        for line in r["kernels"]:
            print(f"    {line}", flush=True)


if __name__ == "__main__":
    main()
