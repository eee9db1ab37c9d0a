#!/usr/bin/env bash
# Build, here, what scripts/gpu-run.sh runs on a GPU machine that has no cargo and no network:
# the GPU bench and the gridlease-gpu tests, release, into target/gpu-carry/ (hand that folder
# to the GPU machine beside a copy of the repository). Prints the newest glibc symbol version the
# binaries need: the GPU machine's glibc (`ldd --version`) must be at least that.
#
#   ./scripts/gpu-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/gpu-carry
rm -rf "$out"
mkdir -p "$out"
cargo build --release --locked -q -p gridlease-gpu --example gpu_bench
cp target/release/examples/gpu_bench "$out/gpu_bench"
tests="$(cargo test --release --locked -q -p gridlease-gpu --test it --no-run \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "it":
        print(m["executable"])
')"
cp "$tests" "$out/gpu_tests"
objdump -T "$out/gpu_bench" "$out/gpu_tests" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1 \
  > "$out/glibc-needed"
git rev-parse HEAD > "$out/commit" 2>/dev/null || true
echo "built $(du -sh "$out" | cut -f1) in $out: gpu_bench, gpu_tests (commit $(cat "$out/commit"))"
echo "needs $(cat "$out/glibc-needed") or newer; this machine has $(ldd --version | head -n 1)"
