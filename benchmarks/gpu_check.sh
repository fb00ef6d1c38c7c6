#!/usr/bin/env bash
# GPU checks of the main job, for a machine with one CUDA device (CI has none, so CI never runs this):
#   1. tests/planners/test_devices.py: every device test, the CUDA half included (planners, model, feature
#      cache, encoder tools, Lightning fit on the GPU then `planners eval --device cuda`);
#   2. benchmarks/planning_bench.py --device cuda at DINO-WM's full shapes, bf16 autocast and float32 (speed, naive ratio, GPU memory
#      per MPC re-plan);
#   3. the demo's data -> encoder -> fit -> plan on the GPU (success rate and stage times).
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]      (default runs/gpu_check; ~3 min on one H200)
#        VIDEOS=0 bash benchmarks/gpu_check.sh ...   (no mp4s: for a machine without imageio-ffmpeg)
set -uo pipefail
out=${1:-runs/gpu_check}
mkdir -p "$out"
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
status=0
t0=$SECONDS
timeout 240 "$py" -m pytest tests/planners/test_devices.py -q -rs -p no:cacheprovider 2>&1 | tee "$out/test_devices.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "device tests: $((SECONDS - t0)) s" | tee -a "$out/times.txt"
t0=$SECONDS
timeout 240 "$py" benchmarks/planning_bench.py --device cuda --samples 300 --chunk-size 300 --iters 3 --amp bf16,none \
    --out "$out/planning_bench_gpu.json" 2>&1 | tee "$out/planning_bench_gpu.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "planning bench: $((SECONDS - t0)) s" | tee -a "$out/times.txt"
t0=$SECONDS
timeout 420 "$py" -m worldmodels.demo --out "$out/demo" --stages data,encoder,fit,plan \
    --plan-args "--samples 100 --topk 10 --iters 5 --execute 2 --device cuda --videos ${VIDEOS:-2}" 2>&1 | tee "$out/demo.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "demo: $((SECONDS - t0)) s" | tee -a "$out/times.txt"
exit $status
