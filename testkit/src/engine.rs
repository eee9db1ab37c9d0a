//! The container engine tests and the demo run container jobs on: the one `scripts/podman.sh
//! start` serves, named by `GRIDLEASE_ENGINE_SOCKET` and `GRIDLEASE_ENGINE_IMAGE` (there is no
//! registry here, so the image is one the script imported). `scripts/test.sh` also sets
//! `GRIDLEASE_REQUIRE_ENGINE`, which makes a missing engine a test failure instead of a skip.

use std::path::PathBuf;

/// A container engine's Docker API socket and an image present on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    /// The engine's Docker API socket.
    pub socket: PathBuf,
    /// An image present on it.
    pub image: String,
}

impl Engine {
    /// The engine the environment names, when its socket is there.
    pub fn from_env() -> Option<Self> {
        let socket = PathBuf::from(std::env::var_os("GRIDLEASE_ENGINE_SOCKET")?);
        let image = std::env::var("GRIDLEASE_ENGINE_IMAGE").ok()?;
        socket.exists().then_some(Self { socket, image })
    }

    /// For a test that needs an engine: the environment's; without one, `None` after saying the
    /// test is skipped, unless `GRIDLEASE_REQUIRE_ENGINE` is set (the test command sets it): then
    /// a missing engine fails the test.
    pub fn for_test() -> Option<Self> {
        let found = Self::from_env();
        if found.is_none() {
            assert!(
                std::env::var_os("GRIDLEASE_REQUIRE_ENGINE").is_none(),
                "GRIDLEASE_REQUIRE_ENGINE is set but no engine is: run `eval \"$(scripts/podman.sh \
                 start)\"` (it exports GRIDLEASE_ENGINE_SOCKET and GRIDLEASE_ENGINE_IMAGE)"
            );
            eprintln!("skipped: no container engine (eval \"$(scripts/podman.sh start)\")");
        }
        found
    }
}
