#!/usr/bin/env bash
# The benchmark suite (issue 8): every component bench, then the market on a devnet, merged into
# target/bench/results.json with a table.
#   1. matmul_i8 on the CPU: reference product vs Freivalds (target/bench/matmul.json)
#   2. the GPU bench when a GPU is present (target/bench/gpu.json; scripts/bench-gpu.sh)
#   3. the provider node: order -> bid latency, RSS, 1,000 orders, 100 leases (provider.json)
#   4. the keeper: one settle sweep over 10,000 leases (keeper.json)
#   4b. a service lease's TLS front against the service reached directly (tls_front.json)
#   5. gridlease-bench: gas per operation (the gas snapshot), and order -> lease -> running ->
#      result latencies over 100 instant jobs with 1 s blocks, against real nodes
#   ./scripts/bench.sh [--quick]     (--quick: smaller sizes, for a first look)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0; [[ "${1:-}" == "--quick" ]] && quick=1
[[ -x node_modules/.bin/anvil ]] || npm ci --no-audit --no-fund --loglevel=error
export PATH="$PWD/node_modules/.bin:$PATH"
mkdir -p target/bench
if (( quick )); then n=1024 orders=200 leases=20 kleases=1000 jobs=30 tlsmib=64; else n=4096 orders=1000 leases=100 kleases=10000 jobs=100 tlsmib=256; fi

echo "==> matmul_i8 CPU (n = $n)"
cargo run --locked --release -q -p gridlease-workload --example matmul_bench -- "$n" target/bench/matmul.json
if command -v nvidia-smi >/dev/null 2>&1 && [[ -x scripts/bench-gpu.sh ]]; then
  echo "==> GPU"; ./scripts/bench-gpu.sh
fi
echo "==> provider node"; ./scripts/bench-provider.sh "$orders" "$leases"
echo "==> keeper"; ./scripts/bench-keeper.sh "$kleases"
echo "==> service TLS front"; ./scripts/bench-tls.sh "$tlsmib" 300
echo "==> market on a devnet"
cargo build --locked --profile perf --bin gridlease-provider --bin gridlease-keeper --bin gridlease-bench
./target/perf/gridlease-bench --jobs "$jobs"
