#!/usr/bin/env bash
# Set everything up on a fresh machine and run the local demo: the whole market as real processes.
#   npm ci (anvil, solc-js, OpenZeppelin) + cargo build, then `gridlease-demo`: anvil on a free
#   loopback port with the contracts deployed (CREATE2) and a mock USDC, three provider nodes with
#   different GPU classes and prices (built-in jobs run on the CPU where there is no GPU; one node
#   cheats), one keeper, and the tenant's `gridlease` CLI: a verifiable matmul_i8 job (instant
#   order), a container job (auctioned), a wrong result proven and slashed, leases settled and
#   closed for the keeper's fees, and a summary table. Every process it starts is stopped at the end.
# Extra arguments go to gridlease-demo (--dir DIR keeps configs, logs and summary.json there).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 1; }; }
need node "install Node.js >= 18"
need npm "install npm (comes with Node.js)"
need cargo "install Rust with rustup (https://rustup.rs)"

echo "==> npm ci (anvil, solc-js, OpenZeppelin)"
npm ci --no-audit --no-fund --loglevel=error
export PATH="$PWD/node_modules/.bin:$PATH"
echo "==> cargo build (gridlease-deploy, gridlease, gridlease-provider, gridlease-keeper, gridlease-demo)"
cargo build --locked --bin gridlease-deploy --bin gridlease --bin gridlease-provider \
  --bin gridlease-keeper --bin gridlease-demo
exec ./target/debug/gridlease-demo "$@"
