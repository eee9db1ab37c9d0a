#!/usr/bin/env bash
# The TLS front of a service lease (ACC-03) against the service reached directly: bulk MiB/s each
# way over one connection, connect + first byte p50/p99, memory per idle connection. Writes
# target/bench/tls_front.json.
#   ./scripts/bench-tls.sh [MIB=256] [CONNS=300]
set -euo pipefail
cd "$(dirname "$0")/.."
# The perf profile (Cargo.toml): the dev profile with optimised dependencies (rustls, aws-lc, tokio);
# the node's own code is not optimised.
cargo build --locked --profile perf --example tls_front_bench
./target/perf/examples/tls_front_bench "${1:-256}" "${2:-300}"
