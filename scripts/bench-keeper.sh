#!/usr/bin/env bash
# Keeper benchmark (issue 6, KB-06): LEASES running service leases (protocol v2 settles only
# those; their providers heart-beat throughout) on a fresh anvil, one full settle sweep by the real
# keeper: settle transactions vs ceil(LEASES / BATCH), gas per lease settled (goal <= 12,000),
# peak RSS.
# Writes target/bench/keeper.json.
#   ./scripts/bench-keeper.sh [LEASES=10000] [BATCH=100]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x node_modules/.bin/anvil ]] || npm ci --no-audit --no-fund --loglevel=error
# The perf profile (Cargo.toml): the dev profile with optimised dependencies; the keeper's own code
# is not optimised.
cargo build --locked --profile perf --bin gridlease-keeper --example keeper_bench
./target/perf/examples/keeper_bench "${1:-10000}" "${2:-100}"
