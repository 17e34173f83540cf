#!/usr/bin/env bash
# GPU readiness check, for the day a CUDA GPU is lent: one script, at most 8 minutes (the time
# limits below add up to 480 s; on a GPU it takes a fraction of that).
#
#   bash benchmarks/gpu_check.sh            # report in runs/gpu_check/report.md
#   OUT=/some/dir bash benchmarks/gpu_check.sh   # report in $OUT/gpu_check/report.md
#
# 1. refuses to run without CUDA (the cuda tests would only be skipped, which proves nothing);
# 2. runs the tests marked `cuda` (tests/test_cuda.py: AMP bf16 / fp16 + GradScaler, exact resume,
#    TensorLoader and augmentation on the device, GridConv fast path, GCN on a PyG batch, CAM
#    maps on the device);
# 3. times the examples on the GPU for a couple of epochs each (seconds per epoch as the examples
#    report them: the CUDA clock is read after a synchronise) and writes one table;
# 4. times the Trainer against a plain DataLoader loop (benchmarks/bench_trainer.py).
# Works from a fresh checkout with gconv pip-installed: no state outside the repository and $OUT.
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (a dry run of this script: the cuda tests
# are then skipped and the report says so).
set -uo pipefail

cd "$(dirname "$0")/.."
DEST="${OUT:-runs}/gpu_check"
mkdir -p "$DEST"
REPORT="$DEST/report.md"
PY="${PYTHON:-python}"
STATUS=0
DEVICE="${GPU_CHECK_DEVICE:-cuda}"

if [ "$DEVICE" = cuda ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch.cuda.is_available() is False here; nothing to check" | tee "$REPORT"
    exit 2
fi

{
    echo "# gconv GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    [ "$DEVICE" = cuda ] || echo "**Dry run on $DEVICE: not a GPU result.**"
    "$PY" - <<'EOF'
import platform, torch, torch_geometric
if not torch.cuda.is_available():
    print(f"- no CUDA; torch {torch.__version__}, {torch.get_num_threads()} threads"); raise SystemExit
p = torch.cuda.get_device_properties(0)
print(f"- GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}")
print(f"- torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}),"
      f" torch_geometric {torch_geometric.__version__}, Python {platform.python_version()}")
print(f"- bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF
    echo
} >"$REPORT"

# ----------------------------------------------------------------------------- 1. cuda tests
echo "## tests marked cuda" >>"$REPORT"
echo '```' >>"$REPORT"
timeout 155 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 \
    | tail -n 25 | tee -a "$REPORT"
TEST_STATUS=${PIPESTATUS[0]}
echo '```' >>"$REPORT"
[ "$TEST_STATUS" -eq 0 ] || STATUS=1

# ----------------------------------------------------------------------------- 2. example epochs
# name | timeout (s) | epochs | command (each writes metrics.json into its --out)
EXAMPLES=(
    "mnist_cnn|45|3|examples/mnist_cnn.py --quiet"
    "mnist_cnn lecture|30|3|examples/mnist_cnn.py --model lecture --quiet"
    "compare_grid_vs_cnn|70|2|examples/compare_grid_vs_cnn.py --seeds 0 --naive-batches 5 --quiet"
    "explain_mnist|40|2|examples/explain_mnist.py --explain 32 --quiet"
    "molecule_gcn|40|3|examples/molecule_gcn.py --quiet"
    "explain_molecule|40|3|examples/explain_molecule.py --explain 32 --quiet"
    "transfer_cam|25|2|examples/transfer_cam.py --limit 2000 --quiet"
)
echo >>"$REPORT"
echo "## a few epochs of each example on $DEVICE" >>"$REPORT"
echo >>"$REPORT"
echo "| example | exit | wall s | s / epoch (as reported) | score after these few epochs |" >>"$REPORT"
echo "|---|---:|---:|---:|---|" >>"$REPORT"
for entry in "${EXAMPLES[@]}"; do
    IFS="|" read -r name limit epochs command <<<"$entry"
    out="$DEST/${name// /_}"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # the command is split into words on purpose
    timeout "$limit" "$PY" $command --epochs "$epochs" --device "$DEVICE" --out "$out" >"$out.log" 2>&1
    code=$?
    wall=$("$PY" -c "print(f'{$(date +%s.%N) - $start:.1f}')")
    [ "$code" -eq 0 ] || STATUS=1
    summary=$("$PY" - "$out/metrics.json" "$epochs" <<'EOF'
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("| - | (no metrics.json: see the log) |"); sys.exit()
if "models" in m:  # compare_grid_vs_cnn: one entry per model
    sec = "; ".join(f"{k} {v['seconds_per_epoch']:.3f}" for k, v in m["models"].items())
    acc = "; ".join(f"{k} {v['test_acc']:.3f}" for k, v in m["models"].items() if v.get("test_acc"))
    print(f"| {sec} | {acc} |"); sys.exit()
sec = m.get("seconds_per_epoch")
if sec is None and m.get("train_seconds") is not None:
    sec = m["train_seconds"] / int(sys.argv[2])  # includes the first (warm-up) epoch
keys = ("test_acc", "test_rmse", "gcn_test_rmse", "deletion_auc", "explained_r2")
score = ", ".join(f"{k} {m[k]:.4g}" for k in keys if isinstance(m.get(k), (int, float)))
print(f"| {sec:.3f} | {score} |" if sec is not None else f"| - | {score} |")
EOF
)
    echo "| $name | $code | $wall $summary" >>"$REPORT"
    echo "gpu_check: $name exit $code in ${wall}s"
done

# ----------------------------------------------------------------------------- 3. Trainer vs loop
# Seconds per epoch of the lecture CNN: the Trainer (over a DataLoader, over a device-resident
# TensorLoader, and with bf16 autocast) against a plain DataLoader loop, each in its own process.
{
    echo
    echo "## Trainer vs a plain DataLoader loop on $DEVICE (bench_trainer.py, 3 timed epochs)"
    echo
    echo '```'
} >>"$REPORT"
timeout 35 "$PY" benchmarks/bench_trainer.py --device "$DEVICE" --epochs 3 --threads 0 \
    --pipelines trainer_dl trainer_tl trainer_tl_bf16 --out "$DEST/bench_trainer" \
    >"$DEST/bench_trainer.log" 2>&1
BENCH_STATUS=$?
grep -v -i "warn" "$DEST/bench_trainer.log" | tail -n 6 | tee -a "$REPORT"
echo '```' >>"$REPORT"
[ "$BENCH_STATUS" -eq 0 ] || STATUS=1

{
    echo
    echo "Logs and artefacts: $DEST/. Exit status 124 means the example ran past its time limit."
    echo "Overall: $([ "$STATUS" -eq 0 ] && echo PASS || echo FAIL)"
} >>"$REPORT"
cat "$REPORT"
exit "$STATUS"
