#!/usr/bin/env bash
# Set everything up on a fresh machine and run the whole test suite.
#   1. npm ci       - solc-js, OpenZeppelin, anvil, forge, cast (exact versions, package-lock.json)
#   2. rustfmt/clippy gates (workspace lints, -D warnings)
#   3. cargo test   - unit tests, revm contract tests, property tests, gas snapshot; the container
#                     executor's real-engine tests on Podman (scripts/podman.sh: installed with
#                     apt-get when missing, started here and stopped at exit)
#   4. forge build  - the same sources compile with forge (foundry.toml)
#   5. Slither      - static analysis, fails on medium or higher (slither.config.json)
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 1; }; }
need node "install Node.js >= 18"
need npm "install npm (comes with Node.js)"
need cargo "install Rust with rustup (https://rustup.rs)"
need python3 "install Python 3.9+ (for Slither)"

echo "==> npm ci (Solidity/EVM toolchain)"
npm ci --no-audit --no-fund --loglevel=error
export PATH="$PWD/node_modules/.bin:$PATH"

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> podman (a real container engine for the executor's tests)"
eval "$(scripts/podman.sh start)"
trap 'scripts/podman.sh stop' EXIT
export GRIDLEASE_REQUIRE_ENGINE=1

echo "==> cargo test"
cargo test --workspace --locked

echo "==> forge build"
forge build --quiet

if [[ "${GRIDLEASE_SKIP_SLITHER:-0}" != "1" ]]; then
  echo "==> slither (static analysis)"
  if [[ ! -x .venv/bin/slither ]]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-slither.txt
  fi
  .venv/bin/slither . --config-file slither.config.json --fail-medium
fi
echo "==> all checks passed"
