"""GELU inside the matmuls, through QuACK's CuTe-DSL GEMMs (GPU, Hopper): the MLP lever of issue 8.

The compiled MLP of the generated GPT runs, per layer at batch B (M = B x 1024 rows, hidden 3072):
forward, a cuBLAS matmul writing the pre-activation, then an inductor kernel reading it and
writing GELU of it; backward, a cuBLAS matmul writing grad_y W2, then an inductor kernel reading
that and the pre-activation and writing the pre-activation's gradient. QuACK (Tri Dao's kernel
library, `quack-kernels`, on NVIDIA's CUTLASS Python DSL) has Hopper GEMMs whose epilogues do
that work as they write: `gemm_act` writes the pre-activation and GELU of it, `gemm_dact` writes
the pre-activation's gradient and, beside it, GELU again (so only the pre-activation is saved).
Two of the six M x 3072 passes go, and two kernel launches per layer. The earlier attempt with
cuBLASLt's epilogues (`gelu_epilogue.py`) lost because its DGELU epilogue exists only in an older
kernel family; this checks whether QuACK's epilogue GEMMs keep cuBLAS's speed. The other four
matmuls of the layer stay with cuBLAS (through PyTorch), since QuACK's plain GEMMs ran slower.

    python benchmarks/quack_mlp.py [--rows 32768]

prints the output's and gradients' error against float64 PyTorch, then the median milliseconds of
one layer's MLP forward and backward under torch.compile: PyTorch as the project ships it, the
two epilogue GEMMs with QuACK's default configurations and autotuned, and QuACK's own MLP (its
GEMMs for all six matmuls). `mlp_forward` is the `quackmlp` lever of `causal_lm_levers.py`.
Needs `quack-kernels` and `nvidia-cutlass-dsl` (with its cu13 libraries) on a Hopper GPU.
"""

import argparse
import functools
import os

from gelu_epilogue import check


@functools.cache
def operators(tuned: bool):
    """The MLP with QuACK's two epilogue GEMMs and cuBLAS (through PyTorch) for the other four.

    The two GEMMs are PyTorch operators of their own, opaque to torch.compile: traced into, QuACK's
    Python wrappers break the graph, and the casts and copies around them then run eagerly."""
    import torch
    from quack.gemm_interface import gemm_act, gemm_dact

    activation = "gelu_tanh_approx"
    suffix = "tuned" if tuned else "default"

    @torch.library.custom_op(f"ccpt_bench::quack_linear_gelu_{suffix}", mutates_args=(), device_types="cuda")
    def linear_gelu(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre, activated = gemm_act(x, weight.t(), activation=activation, tuned=tuned)
        return pre, activated

    @linear_gelu.register_fake
    def _(x, weight):
        shape = (x.shape[0], weight.shape[0])
        return x.new_empty(shape), x.new_empty(shape)

    @torch.library.custom_op(
        f"ccpt_bench::quack_matmul_gelu_backward_{suffix}", mutates_args=(), device_types="cuda"
    )
    def matmul_gelu_backward(
        grad: torch.Tensor, weight: torch.Tensor, pre: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        grad_pre, activated = gemm_dact(grad, weight, pre, activation=activation, tuned=tuned)
        return grad_pre, activated

    @matmul_gelu_backward.register_fake
    def _(grad, weight, pre):
        return pre.new_empty(pre.shape), pre.new_empty(pre.shape)

    class EpilogueMLP(torch.autograd.Function):
        """proj(GELU_tanh(fc(x))) on bf16 operands; only x and the pre-activation are saved."""

        @staticmethod
        def forward(ctx, x, fc_weight, proj_weight):
            rows = x.reshape(-1, x.shape[-1])
            pre, activated = linear_gelu(rows, fc_weight)
            ctx.save_for_backward(rows, fc_weight, proj_weight, pre)
            return (activated @ proj_weight.t()).view(*x.shape[:-1], proj_weight.shape[0])

        @staticmethod
        def backward(ctx, grad):
            rows, fc_weight, proj_weight, pre = ctx.saved_tensors
            flat_grad = grad.reshape(-1, grad.shape[-1]).contiguous()
            grad_pre, activated = matmul_gelu_backward(flat_grad, proj_weight, pre)
            grad_x = (grad_pre @ fc_weight).view(*grad.shape[:-1], fc_weight.shape[1])
            return grad_x, grad_pre.t() @ rows, flat_grad.t() @ activated

    def epilogue_mlp(x, fc_weight, proj_weight):
        bf16 = torch.bfloat16
        return EpilogueMLP.apply(x.to(bf16), fc_weight.to(bf16), proj_weight.to(bf16))

    return epilogue_mlp


def mlp_forward(self, x):
    """MLP.forward of the generated network.py with QuACK's epilogues (causal_lm_levers' quackmlp)."""
    return operators(os.environ.get("CCPT_QUACK_TUNED", "0") == "1")(x, self.fc.weight, self.proj.weight)


def time_mlp(rows: int, width: int = 768) -> dict[str, float]:
    """Median ms of one layer's MLP forward and backward, each variant under torch.compile."""
    import torch
    import torch.nn.functional as F
    from quack.mlp import mlp_func
    from triton.testing import do_bench

    def plain(x, fc, proj):
        return F.linear(F.gelu(F.linear(x, fc), approximate="tanh"), proj)

    def quack_all_tuned(x, fc, proj):  # QuACK's own MLP: its GEMMs for all six matmuls
        return mlp_func(x, fc, proj, activation="gelu_tanh_approx", tuned=True)

    x = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    fc = torch.randn(4 * width, width, device="cuda", requires_grad=True)
    proj = torch.randn(width, 4 * width, device="cuda", requires_grad=True)
    upstream = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16)
    results = {}
    variants = (
        ("compiled PyTorch", plain),
        ("QuACK epilogues, default configs", operators(tuned=False)),
        ("QuACK epilogues, autotuned", operators(tuned=True)),
        ("QuACK's MLP, autotuned", quack_all_tuned),
    )
    for name, function in variants:
        compiled = torch.compile(function)

        def step(function=compiled):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = function(x, fc, proj)
            out.backward(upstream)
            x.grad = fc.grad = proj.grad = None

        results[name] = do_bench(step, warmup=200, rep=1000, return_mode="median")
        print(f"{name:<34} {results[name]:8.3f} ms  (rows {rows})", flush=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profiler:
        for _, function in variants[:3]:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = torch.compile(function)(x, fc, proj)
            out.backward(upstream)
        torch.cuda.synchronize()
    print(profiler.key_averages().table(sort_by="cuda_time_total", row_limit=16, max_name_column_width=70))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=32768, help="rows of the timed MLP (b32 x 1024)")
    args = parser.parse_args()
    for name, error in check(gelu_mlp=operators(tuned=False)).items():
        print(f"relative error against float64, {name}: {error:.2e}", flush=True)
    time_mlp(args.rows)


if __name__ == "__main__":
    main()
