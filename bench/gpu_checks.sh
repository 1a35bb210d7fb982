#!/usr/bin/env bash
# The checks that need a GPU, run in one go on a lent machine (figures in bench/RESULTS.md):
#   1. step overhead on the Qwen2-0.5B shape under bf16 autocast, 8 x 128 and 8 x 512 tokens
#      (python -m bench.step_overhead);
#   2. the engine's tests with the trainer on CUDA (device None means cuda when there is one);
#   3. the scale benchmark at Llama-3-8B layer shapes on the GPU, 1, 2 and 4 decoder layers, full and
#      adaptive_svd (python -m bench.scale; JSON in $OUT/scale_8b_gpu.json): per-phase CUDA peaks and seconds,
#      the leak after training, and the 32-layer extrapolation (fitted on 1 and 2 layers) checked against the
#      4-layer run.
# Run only some of them by naming them: bash bench/gpu_checks.sh scale   (step_overhead, engine, scale).
# That machine has its own python3 with torch; the project's peft and transformers can travel as
# wheels in .whl/. The root tests/conftest.py needs the service's stack, so --confcutdir skips it.
set -uo pipefail
out=${OUT:-/tmp/sculpt-gpu}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' | tee -a "$out/gpu.txt"
checks=${*:-step_overhead engine scale}
wants() { [[ " $checks " == *" $1 "* ]]; }
wants step_overhead && for seq in 128 512; do
    timeout 300 python3 -m bench.step_overhead --model qwen-0.5b --device cuda --threads 8 --rounds 5 --seq $seq 2>&1 \
        | tee "$out/step_overhead_qwen05b_seq$seq.txt"
done
wants engine && timeout 200 python3 -m pytest --confcutdir=tests/engine tests/engine --deselect tests/engine/test_distributed.py -q -p no:cacheprovider 2>&1 | tee "$out/engine_tests_cuda.txt"
# Each run stops at its deadline and reports the phases it finished; 6 runs, the base built on the CPU first.
wants scale && timeout 1000 python3 -m bench.scale --device cuda --runs 1x1,2x1,4x1 --threads 8 --deadline 160 \
    --out "$out/scale_8b_gpu.json" 2>&1 | tail -c 4000 | tee "$out/scale_8b_gpu.txt"
