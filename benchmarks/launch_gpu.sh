#!/usr/bin/env bash
# `ccpt train --nproc-per-node 2` of a generated project on a lent two-GPU H200 machine (NCCL).
#
# The GPU machine has torch, typer, rich, pyyaml, pillow, scikit-learn, but not copier, so the
# project is rendered here first and carried over; ccpt runs from the working tree (PYTHONPATH).
#
#   Here, once:   echo /.gpu-bench/ >> .git/info/exclude && bash benchmarks/launch_gpu.sh prepare
#   On the GPU:   device run, kind nvidia-h200-x2, carry [".gpu-bench"], timeout_s 600,
#                 command: bash benchmarks/launch_gpu.sh run
#
# It writes to $OUT: gpu.txt (the GPUs and torch), dry_run.txt (the exact command), ccpt_train.log
# (the whole console of a 200-step NCCL run), run.tar.gz (its run folder: plan, summary, every
# rank's log) and first_step.txt (time to the first step, ccpt train against a hand-written
# torchrun line, 3 alternating pairs, medians and ratio).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$REPO/.gpu-bench"
PROJECT="$BENCH/demo"

case "${1:-}" in
prepare)
    rm -rf "$PROJECT" && mkdir -p "$BENCH"
    (cd "$BENCH" && "$REPO/.venv/bin/ccpt" new demo --defaults --no-git)
    echo "rendered $PROJECT; now run 'bash benchmarks/launch_gpu.sh run' on nvidia-h200-x2 with carry .gpu-bench"
    ;;
run)
    OUT="${OUT:-$BENCH/out}"
    mkdir -p "$OUT"
    export PYTHONPATH="$REPO/cli${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    # Keep NVLink multicast off (the machine's rule), also in every process ccpt starts.
    export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
    PY=python3
    { nvidia-smi -L; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())"; } | tee "$OUT/gpu.txt"
    cd "$PROJECT"
    $PY -m ccpt train --nproc-per-node 2 --job-id h200-dry --dry-run -- --max-steps 200 | tee "$OUT/dry_run.txt"
    set +e
    $PY -m ccpt train --nproc-per-node 2 --job-id h200-nccl --env NCCL_DEBUG=INFO -- --max-steps 200 2>&1 | tee "$OUT/ccpt_train.log"
    status=${PIPESTATUS[0]}
    set -e
    tar -czf "$OUT/run.tar.gz" -C runs h200-nccl
    echo "ccpt train exit code: $status" | tee -a "$OUT/ccpt_train.log"
    cd "$REPO"
    $PY benchmarks/launch_first_step.py --project "$PROJECT" --nproc 2 --runs 3 --needle "step 1 " \
        -- --max-steps 5 --set eval_every=1 2>&1 | tee "$OUT/first_step.txt"
    exit "$status"
    ;;
*)
    echo "usage: bash benchmarks/launch_gpu.sh prepare|run" >&2
    exit 2
    ;;
esac
