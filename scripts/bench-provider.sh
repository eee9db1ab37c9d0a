#!/usr/bin/env bash
# Provider node benchmark (issue 5 goals): order log -> bid latency p50/p99 over ORDERS open
# orders, idle RSS, and LEASES concurrent leases. Writes target/bench/provider.json.
#   ./scripts/bench-provider.sh [ORDERS=1000] [LEASES=100]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x node_modules/.bin/anvil ]] || npm ci --no-audit --no-fund --loglevel=error
# The dev profile: dependencies are built with opt-level 2 (Cargo.toml), the node's own code is not.
cargo build --locked --bin gridlease-provider --example provider_bench
./target/debug/examples/provider_bench "${1:-1000}" "${2:-100}"
