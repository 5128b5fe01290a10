#!/usr/bin/env bash
# Every GPU figure the docs need, in one run of under 10 minutes on one H100/H200-class GPU.
#
#   benchmarks/gpu_check.sh                       # on the GPU; writes gpu-check-<date>/ and prints the summary
#   benchmarks/gpu_check.sh --device cpu          # smoke run of the same code on a CPU (quick preset, 32², fp32)
#   benchmarks/gpu_check.sh --k 4 --peak-tflops 989 --out DIR
#
# Parts, each under its own time limit so the whole stays inside the budget (a part that runs out is
# recorded as such and the next one starts):
#   1. steps   each method's paper-preset step, bf16, eager and --compile, achieved TFLOP/s  (step-<method>.json)
#              and S3PET Stage II's share of the bf16 peak                                   (in the summary)
#   2. engine  petbench's engine against a bare PyTorch loop                                (engine.json)
#   3. grids   petbench grid table1, every method's quick preset, small phantom, K = 1 and K (grid-k<K>.json)
#   4. extras  further measurement scripts (EXTRA_MEASUREMENTS below)                        (extra-<name>.log)
# Then summary.md: the cost table of docs/reproducing.md ("What it costs"), printed too.
# Run from the repository root with petbench, its plugins and pytest-benchmark installed (`make setup`).
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
K=""
PEAK_TFLOPS=989            # NVIDIA's dense BF16 Tensor Core figure, H100 SXM; H200: the same; H100 PCIe: 756
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --k) K="$2"; shift 2 ;;
    --peak-tflops) PEAK_TFLOPS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "Error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$K" ]; then if [ "${DEVICE%%:*}" = "cuda" ]; then K=4; else K=2; fi; fi
OUT="${OUT:-gpu-check-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# The phantom cache stays out of the results folder (which should stay small enough to copy back), and is
# kept for a rerun of the script.
export PETBENCH_CACHE="${PETBENCH_CACHE:-${TMPDIR:-/tmp}/petbench-gpu-check-cache}"

# Time limits per part, in seconds; each can be set in the environment. GPU: 6 x 45 + 40 + 30 + 150 + 100
# = 590 s at most, so the whole stays inside 10 minutes with the start-up and the summary.
if [ "${DEVICE%%:*}" = "cuda" ]; then
  STEP_LIMIT=${STEP_LIMIT:-45}; ENGINE_LIMIT=${ENGINE_LIMIT:-40}; PREPARE_LIMIT=${PREPARE_LIMIT:-30}
  GRID1_LIMIT=${GRID1_LIMIT:-150}; GRIDK_LIMIT=${GRIDK_LIMIT:-100}; EXTRA_LIMIT=${EXTRA_LIMIT:-60}
  ENGINE_ENV="BENCH_STEPS=320 BENCH_ROUNDS=3"
else  # the CPU smoke run: as long as a loaded 2-core machine needs
  STEP_LIMIT=${STEP_LIMIT:-300}; ENGINE_LIMIT=${ENGINE_LIMIT:-300}; PREPARE_LIMIT=${PREPARE_LIMIT:-300}
  GRID1_LIMIT=${GRID1_LIMIT:-900}; GRIDK_LIMIT=${GRIDK_LIMIT:-900}; EXTRA_LIMIT=${EXTRA_LIMIT:-300}
  ENGINE_ENV="BENCH_STEPS=32 BENCH_ROUNDS=1"
fi

# 4. Further measurements: each entry is a command run from the repository root with $DEVICE and $OUT
# set; its output goes to $OUT/extra-<n>.log. Add launch-bound measurements (kernel counts, FLOPs per
# launch, ...) here, e.g.  "python -m pytest benchmarks/test_launches.py -q -s --device-env"
EXTRA_MEASUREMENTS=(
  # the launch-bound figures (docs/reproducing.md): kernels and kernel-issuing ops per step, step time
  # eager and compiled, FLOPs and the share of the peak, per method (Cycle-GAN's merge/stack/none steps too)
  'python benchmarks/gpu_launch_check.py --device "$DEVICE" --compile --out "$OUT/launch.json"'
)

{
  echo "device: $DEVICE"; date -u +"started: %Y-%m-%dT%H:%M:%SZ"; uptime
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
: > "$OUT/sections.tsv"

section() {  # section NAME LIMIT COMMAND...: run with a time limit, record its wall time and exit status
  local name="$1" limit="$2"; shift 2
  local started=$SECONDS status
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  status=$?
  [ $status -eq 124 ] && echo "   $name ran out of its ${limit} s (see $OUT/$name.log)"
  [ $status -ne 0 ] && [ $status -ne 124 ] && echo "   $name failed with exit $status (see $OUT/$name.log)"
  printf '%s\t%s\t%s\n' "$name" "$((SECONDS - started))" "$status" >> "$OUT/sections.tsv"
  return 0
}

python benchmarks/gpu_check.py peak --out "$OUT" --peak-tflops "$PEAK_TFLOPS"
for method in cyclegan autocontext argan cvtgan semipet s3pet; do
  section "step-$method" "$STEP_LIMIT" python benchmarks/gpu_check.py step --method "$method" --device "$DEVICE" --out "$OUT"
done
section engine "$ENGINE_LIMIT" env BENCH_DEVICE="$DEVICE" $ENGINE_ENV python -m pytest -q -s -p no:cacheprovider \
  benchmarks/test_engine_vs_bare_loop.py -k "not mallopt" --benchmark-json="$OUT/engine-benchmark.json"
[ -f "$OUT/engine-benchmark.json" ] && python benchmarks/gpu_check.py engine --out "$OUT" --bench-json "$OUT/engine-benchmark.json"
section prepare-grid "$PREPARE_LIMIT" python benchmarks/gpu_check.py prepare-grid --device "$DEVICE" --out "$OUT"
section grid-k1 "$((GRID1_LIMIT + 20))" python benchmarks/gpu_check.py grid --workers-per-gpu 1 --limit "$GRID1_LIMIT" \
  --device "$DEVICE" --out "$OUT"
section "grid-k$K" "$((GRIDK_LIMIT + 20))" python benchmarks/gpu_check.py grid --workers-per-gpu "$K" --limit "$GRIDK_LIMIT" \
  --device "$DEVICE" --out "$OUT"
n=0
for extra in "${EXTRA_MEASUREMENTS[@]}"; do
  n=$((n + 1))
  section "extra-$n" "$EXTRA_LIMIT" env DEVICE="$DEVICE" OUT="$OUT" bash -c "$extra"
done

echo
python benchmarks/gpu_check.py summary --out "$OUT"
echo
echo "results: $OUT"
