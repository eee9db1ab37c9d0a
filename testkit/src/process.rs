//! A daemon process a test started, killed when the handle is dropped: a failing test (a panic
//! anywhere) leaves no node or keeper behind.

use std::process::Child;

/// The child process; `Deref`s to [`Child`].
#[derive(Debug)]
pub struct Daemon(pub Child);

impl std::ops::Deref for Daemon {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
