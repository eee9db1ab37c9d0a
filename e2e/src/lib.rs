//! gridlease-e2e: the whole market as real processes on a local devnet.
//!
//! - [`market`]: anvil + the deployed suite + three provider nodes with different GPU classes and
//!   prices + one keeper, each a real `gridlease-provider` / `gridlease-keeper` process, and the
//!   tenant's `gridlease` CLI.
//! - [`scenario`]: the demo: a verifiable `matmul_i8` job (instant order), a container job
//!   (auctioned), a provider that cheats on a `matmul_i8` job and gets slashed on the keeper's proof.
//! - [`summary`]: what happened, read back from the chain: jobs, winning prices, order -> running
//!   -> result times, gas per account, who was paid what, who was slashed.
//!
//! `gridlease-demo` (the README's first command runs it) and the end-to-end tests share all of it;
//! `gridlease-bench` measures the market on the same devnet.

pub mod market;
pub mod scenario;
pub mod summary;

use std::path::PathBuf;

/// Where the workspace's binaries are: next to the running executable (`target/<profile>/`),
/// or its parent for test executables (`target/<profile>/deps/`).
pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    Ok(path)
}
