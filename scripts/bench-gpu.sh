#!/usr/bin/env bash
# GPU benchmark of the built-in matmul_i8 workload, side by side with torch._int_mm.
#
#   ./scripts/bench-gpu.sh [N]        (N = 8192: the product size for TOPS and the Merkle figure)
#
# Runs `cargo run --release -p gridlease-gpu --example gpu_bench` (GPU vs CPU roots for a table
# of shapes, INT8 TOPS at N^3, Freivalds at 8,192 and 16,384 as a fraction of the product, Merkle
# GB/s of C's result tree in 1 KiB leaves; writes target/bench/gpu.json and gpu.log), then
# gpu/bench/torch_int_mm.py (torch._int_mm at N^3 on the same GPU; target/bench/torch.json), and
# prints the ratio against the 95 % goal. Without a GPU (or without PyTorch) it says so, prints
# the CPU figures and exits 0. On a machine without cargo, use scripts/gpu-run.sh with binaries
# built by scripts/gpu-build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-8192}"
PY="${PYTHON:-python3}"
mkdir -p target/bench
date -u +"%Y-%m-%dT%H:%M:%SZ"
# Where CUDA came with PyTorch's wheels only (nvidia-cublas-cu12, nvidia-cuda-nvrtc-cu12, ...),
# their lib directories are not on the loader's path: add them, so gridlease-gpu finds libcublas
# and libnvrtc like torch does. (libcuda itself comes with the driver.)
if command -v "$PY" >/dev/null; then
    WHEEL_LIBS="$("$PY" - <<'PY' 2>/dev/null || true
import glob, os, site
bases = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({d for b in bases for d in glob.glob(os.path.join(b, "nvidia", "*", "lib"))})))
PY
)"
    if [[ -n "$WHEEL_LIBS" ]]; then
        export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$WHEEL_LIBS"
        echo "LD_LIBRARY_PATH += $WHEEL_LIBS"
    fi
fi
cargo run --release -q -p gridlease-gpu --example gpu_bench -- --n "$N" --out-dir target/bench
if command -v "$PY" >/dev/null; then
    "$PY" gpu/bench/torch_int_mm.py "$N" target/bench/torch.json || echo "torch bench failed"
else
    echo "no $PY: torch._int_mm not measured"
    echo '{"skipped": "no python"}' > target/bench/torch.json
fi
"$PY" - <<'PY' || true
import json
g = json.load(open("target/bench/gpu.json"))
t = json.load(open("target/bench/torch.json"))
ours = (g.get("figures") or {}).get("matmul", {}).get("tops")
theirs = t.get("tops")
if ours is None or theirs is None:
    print("side by side: not measured (", g.get("reason") or t.get("skipped") or "no GPU figures", ")")
else:
    ratio = ours / theirs
    print(f"matmul_i8 {ours:.1f} TOPS vs torch._int_mm {theirs:.1f} TOPS: {100 * ratio:.1f} % "
          f"(goal >= 95 %: {'met' if ratio >= 0.95 else 'NOT met'})")
    g["torch_int_mm"] = t
    g["ratio_vs_torch"] = ratio
    json.dump(g, open("target/bench/gpu.json", "w"), indent=2)
PY
