#!/usr/bin/env bash
# The run on a GPU machine, prepared to succeed on its first try: it needs no cargo and no
# network, only the binaries scripts/gpu-build.sh built elsewhere, python3 (with PyTorch for the
# side-by-side figure) and the NVIDIA driver. Everything it prints and measures goes to $OUT
# (default target/gpu-run) as seven plain files (a lent machine's $OUT gives back plain files,
# eight at most): run.log (with the CUDA libraries it found and linked), torch._int_mm at
# 8,192^3 before and after ours (torch_before.json, torch_after.json), gpu_bench's gpu.json and
# gpu.log (GPU == CPU roots, how the kernels were built, TOPS and fraction of peak, Merkle
# leaves/levels, Freivalds fractions), the GPU tests' log, and summary.json. About 2 to 3
# minutes on an H100/H200 (estimated); never more than DEADLINE seconds (420): each step's limit
# is cut to what is left.
#
#   ./scripts/gpu-run.sh [BINARIES]     (default target/gpu-carry)
#
# Exits 1 when no GPU path opened, a GPU root differs from the CPU's, a correct product is
# rejected, or a GPU test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/gpu-carry}"
out="${OUT:-target/gpu-run}"
mkdir -p "$out"
exec > >(tee "$out/run.log") 2>&1
tee_pid=$!
step() { echo "==> [$(date -u +%T), ${SECONDS}s] $*"; }
PY="${PYTHON:-python3}"
N="${N:-8192}"
# The whole run ends within DEADLINE seconds (a lent machine's time is short, and a hung step must
# not keep the others from running): each step gets at most its own limit and what is left.
DEADLINE="${DEADLINE:-420}"
cap() {
  local left=$((DEADLINE - SECONDS - 20))
  if ((left < $1)); then echo $((left > 10 ? left : 10)); else echo "$1"; fi
}

step "machine"
[[ -x "$bin/gpu_bench" && -x "$bin/gpu_tests" ]] || {
  echo "no binaries in $bin: build them with scripts/gpu-build.sh and bring $bin along"
  exit 1
}
echo "binaries of commit $(cat "$bin/commit" 2>/dev/null || echo '?'), need $(cat "$bin/glibc-needed" 2>/dev/null)"
ldd --version | head -n 1
timeout 20 nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit \
  --format=csv 2>&1 || echo "nvidia-smi: not available"
timeout 60 "$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)' 2>&1 \
  || echo "no PyTorch (or it did not answer in 60 s): torch._int_mm will not be measured"

step "CUDA libraries (CUDA 12 or 13, the toolkit or PyTorch's wheels)"
# The links live outside $OUT: only plain files come back from it, eight at most.
links="$(mktemp -d)/cuda-libs"
if ld_path="$("$bin/gpu_bench" --ld-library-path "$links")"; then
  ls -l "$links" 2>/dev/null || echo "(every CUDA library loads as it is: nothing to link)"
  echo "LD_LIBRARY_PATH for the tests: $ld_path"
else
  echo "(the GPU path will say what is missing)"
  ld_path="${LD_LIBRARY_PATH:-}"
fi

step "torch._int_mm at ${N}^3, before ours"
timeout "$(cap 120)" "$PY" gpu/bench/torch_int_mm.py "$N" "$out/torch_before.json"
torch_rc=$?
((torch_rc == 0)) || echo "{\"skipped\": \"exit $torch_rc (124: timed out)\"}" > "$out/torch_before.json"

step "gpu_bench --require-gpu (ours)"
timeout "$(cap 300)" "$bin/gpu_bench" --n "$N" --out-dir "$out" --require-gpu
bench=$?
echo "gpu_bench exit $bench"

step "torch._int_mm at ${N}^3, after ours"
if ((torch_rc == 124)); then
  echo '{"skipped": "the run before ours timed out"}' > "$out/torch_after.json"
else
  timeout "$(cap 120)" "$PY" gpu/bench/torch_int_mm.py "$N" "$out/torch_after.json" \
    || echo '{"skipped": "failed or timed out"}' > "$out/torch_after.json"
fi

step "GPU tests (the device tests of gridlease-gpu)"
LD_LIBRARY_PATH="$ld_path" GRIDLEASE_REQUIRE_GPU=1 timeout "$(cap 150)" \
  "$bin/gpu_tests" device:: --test-threads 1 > "$out/gpu_tests.log" 2>&1
tests=$?
tail -n 15 "$out/gpu_tests.log"
echo "gpu tests exit $tests"

step "summary"
"$PY" - "$out" "$bench" "$tests" <<'PY'
import json, os, statistics, sys

out, bench, tests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception as e:
        return {"skipped": f"{name}: {e}"}
g, before, after = load("gpu.json"), load("torch_before.json"), load("torch_after.json")
f = g.get("figures") or {}
torch_tops = [t["tops"] for t in (before, after) if "tops" in t]
ours = (f.get("matmul") or {}).get("tops")
s = {
    "gpu": g.get("gpu"),
    "all_roots_equal": f.get("all_equal"),
    "freivalds_accepts_correct": f.get("freivalds_accepts_correct"),
    "matmul_tops": ours,
    "fraction_of_peak": (f.get("matmul") or {}).get("fraction_of_peak"),
    "torch_int_mm_tops": torch_tops,
    "ratio_vs_torch": ours / statistics.median(torch_tops) if ours and torch_tops else None,
    "merkle_gb_per_s": (f.get("merkle") or {}).get("gb_per_s"),
    "merkle_leaves_gb_per_s": (f.get("merkle") or {}).get("leaves_gb_per_s"),
    "freivalds_fractions": {str(x["n"]): x["fraction"] for x in f.get("freivalds", [])},
    "freivalds_kernels_fractions": {
        str(x["n"]): x.get("kernels_fraction") for x in f.get("freivalds", [])
    },
    "kernels": (g.get("gpu") or {}).get("kernels"),
    "gpu_bench_exit": bench,
    "gpu_tests_exit": tests,
}
print(json.dumps(s, indent=2))
with open(os.path.join(out, "summary.json"), "w") as fh:
    json.dump(s, fh, indent=2)
    fh.write("\n")
PY
[[ $bench -eq 0 && $tests -eq 0 ]]
rc=$?
echo "==> [$(date -u +%T), ${SECONDS}s] exit $rc"
# run.log is written by tee: close its input and let it finish before $OUT is collected.
exec >&- 2>&-
wait "$tee_pid" 2>/dev/null
exit "$rc"
