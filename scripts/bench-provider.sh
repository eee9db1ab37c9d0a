#!/usr/bin/env bash
# Provider node benchmark (issue 5 goals): order log -> bid latency p50/p99 over ORDERS open
# orders, idle RSS, and LEASES concurrent leases. Writes target/bench/provider.json.
#   ./scripts/bench-provider.sh [ORDERS=1000] [LEASES=100]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x node_modules/.bin/anvil ]] || npm ci --no-audit --no-fund --loglevel=error
# The perf profile (Cargo.toml): the dev profile with optimised dependencies; the node's own code is
# not optimised.
cargo build --locked --profile perf --bin gridlease-provider --example provider_bench
./target/perf/examples/provider_bench "${1:-1000}" "${2:-100}"
