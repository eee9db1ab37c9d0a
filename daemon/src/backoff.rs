//! The one retry delay of the daemons.

/// The one retry delay of the daemons: `base` after a success, doubled after each failure up to
/// `max`. A loop sleeps [`Backoff::delay`], then reports how the attempt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: std::time::Duration,
    max: std::time::Duration,
    delay: std::time::Duration,
}

impl Backoff {
    /// Starting (and after each success) at `base`, never longer than `max`.
    pub const fn new(base: std::time::Duration, max: std::time::Duration) -> Self {
        Self {
            base,
            max,
            delay: base,
        }
    }

    /// How long to wait before the next attempt.
    pub const fn delay(&self) -> std::time::Duration {
        self.delay
    }

    /// An attempt failed: the next wait doubles (up to the maximum). Returns it.
    pub fn failed(&mut self) -> std::time::Duration {
        self.delay = (self.delay.max(self.base) * 2).min(self.max);
        self.delay
    }

    /// An attempt succeeded: the next wait is the base again.
    pub fn succeeded(&mut self) {
        self.delay = self.base;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    #[test]
    fn backoff_doubles_to_its_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        assert_eq!(b.delay(), Duration::from_millis(250));
        assert_eq!(b.failed(), Duration::from_millis(500));
        assert_eq!(b.failed(), Duration::from_secs(1));
        assert_eq!(b.failed(), Duration::from_secs(1));
        b.succeeded();
        assert_eq!(b.delay(), Duration::from_millis(250));
    }
}
