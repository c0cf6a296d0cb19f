#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: run the engine and settle benchmarks there, a `paper` preset
# batch of 16 seeds at P = 113, and `circeff reproduce --preset paper` for as long as allowed,
# and write the numbers as a Markdown section that can be pasted into docs/performance.md.
#
#   bash benchmarks/gpu_run.sh [OUT_DIR]
#
# Environment (all optional):
#   PAPER_STEPS=40000      steps of the 16-seed paper batch (the paper preset's 40000)
#   PAPER_SEEDS=0,...,15   its seeds
#   TRAIN_LIMIT_MIN=60     wall-clock limit of that batch (it resumes if rerun)
#   REPRODUCE_LIMIT_MIN=120  wall-clock limit of `reproduce --preset paper` (it resumes if rerun)
# Everything a step prints goes to OUT_DIR/<step>.log; the summary is OUT_DIR/performance_gpu.md.
set -u
OUT=${1:-gpu_run_$(date -u +%Y%m%dT%H%M%SZ)}
PAPER_STEPS=${PAPER_STEPS:-40000}
PAPER_SEEDS=${PAPER_SEEDS:-0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}
TRAIN_LIMIT_MIN=${TRAIN_LIMIT_MIN:-60}
REPRODUCE_LIMIT_MIN=${REPRODUCE_LIMIT_MIN:-120}
mkdir -p "$OUT"
MD="$OUT/performance_gpu.md"
PY=${PYTHON:-python}

python_info=$($PY - <<'PY'
import platform, torch
ok = torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, python {platform.python_version()}, "
      f"GPU: {torch.cuda.get_device_name(0) if ok else 'NONE'}")
PY
)
echo "$python_info"
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA device visible to torch; nothing to measure" >&2
    exit 1
fi

section() { printf '\n### %s\n\n' "$1" >> "$MD"; }
verbatim() { { echo '```text'; cat "$1"; echo '```'; } >> "$MD"; }

{
    echo "## Recorded on a GPU"
    echo
    echo "Recorded by \`benchmarks/gpu_run.sh\` on $(date -u +'%Y-%m-%d %H:%M UTC'): $python_info."
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU (nvidia-smi): /'
} > "$MD"

# 1. The engine against the plain reference, both on the GPU (E up to 64: a GPU wants more).
section "Engine (benchmarks/bench_engine.py --device cuda)"
$PY benchmarks/bench_engine.py --device cuda --models 1,4,16,64 --repeats 7 --steps 5 2>&1 | tee "$OUT/bench_engine.log"
verbatim "$OUT/bench_engine.log"

# 2. The settle, batched against one model at a time.
section "Settle (benchmarks/bench_settle.py --device cuda --p 113 --models 16)"
$PY benchmarks/bench_settle.py --device cuda --p 113 --models 16 --iterations 20 2>&1 | tee "$OUT/bench_settle.log"
verbatim "$OUT/bench_settle.log"

# 3. A paper-preset batch: 16 seeds at P = 113, 30% of the pairs, in one run.
section "Paper preset, 16 seeds at P = 113 ($PAPER_STEPS steps, limit $TRAIN_LIMIT_MIN min)"
start=$(date +%s)
timeout "${TRAIN_LIMIT_MIN}m" circeff train --preset paper --seeds "$PAPER_SEEDS" --steps "$PAPER_STEPS" \
    --device cuda --no-progress --out "$OUT/paper16" 2>&1 | tail -20 | tee "$OUT/paper16.log"
rc=${PIPESTATUS[0]}
wall=$(( $(date +%s) - start ))
$PY - "$OUT/paper16" "$wall" "$rc" >> "$MD" <<'PY'
import csv, sys
from pathlib import Path
run, wall, rc = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(run / "metrics.csv"))) if (run / "metrics.csv").exists() else []
last = max((int(r["step"]) for r in rows), default=0)
final = [r for r in rows if int(r["step"]) == last]
state = "finished" if rc == 0 else ("stopped by the time limit (rerun to resume)" if rc == 124 else f"failed (exit {rc})")
print(f"- wall time {wall} s, {state}; last logged step {last}")
if final and last:
    n = len(final)
    print(f"- {n} models: ms per model-step {1000 * wall / max(last, 1) / n:.2f} (wall time / steps / models, "
          "including logging and checkpoints)")
    acc = sorted(float(r["test_acc"]) for r in final if r["test_acc"] != "")
    if acc:
        print(f"- test accuracy at step {last}: min {acc[0]:.3f}, median {acc[len(acc) // 2]:.3f}, max {acc[-1]:.3f}")
PY

# 4. The whole paper-preset reproduction, as far as the time allows (rerunning resumes).
section "circeff reproduce --preset paper --device cuda (limit $REPRODUCE_LIMIT_MIN min)"
start=$(date +%s)
timeout "${REPRODUCE_LIMIT_MIN}m" circeff reproduce --preset paper --device cuda --no-progress \
    --out "$OUT/reproduce_paper" 2>&1 | tail -40 | tee "$OUT/reproduce.log"
rc=${PIPESTATUS[0]}
echo "- wall time $(( $(date +%s) - start )) s, exit code $rc (124: stopped by the time limit)" >> "$MD"
$PY - "$OUT/reproduce_paper" >> "$MD" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = out / "summary.json"
if summary.exists():  # the whole run finished: its own timing table
    stages = json.loads(summary.read_text()).get("timings", {}).get("stages", {})
    for name, t in stages.items():
        print(f"- stage {name}: {t.get('seconds')} s ({t.get('status')})")
else:  # stopped part way: the stages that finished
    for f in sorted(out.glob("**/stage.json")):
        try:
            outcome = json.loads(f.read_text()).get("outcome", {})
        except ValueError:
            continue
        print(f"- stage {f.parent.name}: {outcome.get('seconds', '?')} s ({outcome.get('status', '?')})")
PY
verbatim "$OUT/reproduce.log"
echo "wrote $MD"
