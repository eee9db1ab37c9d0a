#!/usr/bin/env bash
# Set everything up on a fresh machine and run the local demo: the whole market as real processes.
#   npm ci (anvil, solc-js, OpenZeppelin) + cargo build, then `gridlease-demo`: anvil on a free
#   loopback port with the contracts deployed (CREATE2) and a mock USDC, four provider nodes with
#   different GPU classes and prices (built-in jobs run on the CPU where there is no GPU; one node
#   posts wrong products, one withholds its results), one keeper, and the tenant's `gridlease` CLI:
#   a verifiable matmul_i8 job (instant order) verified and accepted, a container job (auctioned)
#   completed after its challenge window, a wrong product proven by the tenant (free, inside its
#   priority), a withheld result challenged and proven unavailable by the keeper (for its fee, after
#   the tenant's priority), both cheaters slashed, and a summary table. Every process it starts is
#   stopped at the end.
# Extra arguments go to gridlease-demo (--dir DIR keeps configs, logs and summary.json there;
# --keep leaves the market running after the summary and serves the web console on it until
# Ctrl-C, building it first).
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
for a in "$@"; do
  if [ "$a" = "--keep" ]; then
    echo "==> the web console (console/: npm ci, npm run build)"
    (cd console && npm ci --no-audit --no-fund --loglevel=error && npm run build >/dev/null)
  fi
done
exec ./target/debug/gridlease-demo "$@"
