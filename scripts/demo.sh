#!/usr/bin/env bash
# Set everything up on a fresh machine and run the local demo:
#   npm ci + cargo build, a devnet (anvil on a free loopback port, contracts deployed with CREATE2,
#   a mock USDC, funded demo accounts with keystores), then the tenant's side with the real CLI:
#   submit a verifiable matmul job with one permit signature, look at it, top it up, cancel it and
#   get every cent back. Providers and keepers join the demo when their daemons land (issues 5, 6).
# Stops anvil on exit. Set GRIDLEASE_DEMO_KEEP=1 to leave the devnet running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 1; }; }
need node "install Node.js >= 18"
need npm "install npm (comes with Node.js)"
need cargo "install Rust with rustup (https://rustup.rs)"

echo "==> npm ci (anvil, solc-js, OpenZeppelin)"
npm ci --no-audit --no-fund --loglevel=error
echo "==> cargo build (gridlease-deploy, gridlease, gridlease-provider)"
cargo build --locked --bin gridlease-deploy --bin gridlease --bin gridlease-provider

work=$(mktemp -d)
out="$work/devnet.out"
./target/debug/gridlease-deploy devnet --dir "$work/devnet" --root "$work" >"$out" 2>&1 &
devnet=$!
stop() { kill "$devnet" 2>/dev/null || true; wait "$devnet" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 120); do
  grep -q "Ctrl-C stops the devnet" "$out" 2>/dev/null && break
  kill -0 "$devnet" 2>/dev/null || { cat "$out"; echo "error: the devnet did not start" >&2; exit 1; }
  sleep 0.5
done
cat "$out"

rpc=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
gl() {
  ./target/debug/gridlease --rpc "$rpc" --deployments "$work/deployments/31337.json" \
    --keystore "$work/devnet/keystores/tenant.json" --password "file:$work/devnet/password" "$@"
}
tenant=$(gl list --json | sed -n 's/.*"tenant":"\(0x[0-9a-fA-F]*\)".*/\1/p')
balance() { ./node_modules/.bin/cast call --rpc-url "$rpc" "$(sed -n '/MockStablecoinUSDC/,/address/s/.*"address": "\(0x[0-9a-f]*\)".*/\1/p' "$work/deployments/31337.json")" "balanceOf(address)(uint256)" "$tenant" | cut -d' ' -f1; }

echo; echo "==> tenant balance: $(balance) units (6 decimals)"
echo "==> gridlease submit examples/matmul.toml"
id=$(gl submit examples/matmul.toml | head -1)
echo; echo "==> gridlease status $id"; gl status "$id"
echo; echo "==> gridlease market"; gl market
echo; echo "==> gridlease topup $id 0.5"; gl topup "$id" 0.5
echo; echo "==> gridlease cancel $id"; gl cancel "$id"
echo; echo "==> tenant balance: $(balance) units: every cent came back"

if [[ "${GRIDLEASE_DEMO_KEEP:-0}" == "1" ]]; then
  echo "devnet left running at $rpc; Ctrl-C to stop"
  wait "$devnet"
fi
