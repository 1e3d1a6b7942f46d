//! When a child still running must be killed: shortly before the invocation's deadline.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use tinylambda::Context;

/// How long before the deadline a child still running is killed, so that the invocation
/// gets our `/error` (with the child's stderr) rather than Lambda's timeout, and the
/// runtime stays warm. Less when the whole invocation has less than twice this left.
pub(crate) const MARGIN_MS: u64 = 50;

/// The moment to kill the child, if there is one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: wait as long as it takes.
    pub(crate) const NONE: Deadline = Deadline(None);

    /// From the invocation's `Lambda-Runtime-Deadline-Ms`. None when it is missing, or
    /// already past as the invocation starts (emulators send such deadlines: `cargo lambda`
    /// sends 600000, ten minutes after 1970), since a real one never is.
    pub(crate) fn of(ctx: &Context<'_>) -> Deadline {
        match ctx.remaining_ms() {
            None | Some(0) => Deadline::NONE,
            Some(ms) => Deadline::after_ms(ms - MARGIN_MS.min(ms / 2)),
        }
    }

    /// `ms` milliseconds from now.
    pub(crate) fn after_ms(ms: u64) -> Deadline {
        Deadline(Instant::now().checked_add(Duration::from_millis(ms)))
    }

    /// The earlier of the two.
    pub(crate) fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (a, b) => Deadline(a.or(b)),
        }
    }

    /// Time left, `None` without a deadline.
    pub(crate) fn left(self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the moment has come.
    pub(crate) fn passed(self) -> bool {
        self.left() == Some(Duration::ZERO)
    }

    /// The `poll` timeout: milliseconds left, rounded up, or -1 without a deadline.
    pub(crate) fn poll_ms(self) -> c_int {
        match self.left() {
            None => -1,
            Some(left) => {
                let ms = left.as_micros().div_ceil(1000);
                c_int::try_from(ms).unwrap_or(c_int::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylambda::{Config, Header};

    #[test]
    fn a_deadline_in_the_past_at_the_start_means_none() {
        let config = Config::default();
        let ctx = Context::new("r", &config).with(Header::DeadlineMs, "600000");
        assert_eq!(Deadline::of(&ctx).poll_ms(), -1);
        let ctx = Context::new("r", &config);
        assert_eq!(Deadline::of(&ctx).poll_ms(), -1);
    }

    #[test]
    fn a_future_deadline_leaves_the_margin() {
        let config = Config::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let at = (now + 10_000).to_string();
        let ctx = Context::new("r", &config).with(Header::DeadlineMs, &at);
        let ms = Deadline::of(&ctx).poll_ms();
        assert!((9_000..=10_000 - MARGIN_MS as i32).contains(&ms), "{ms}");
        let at = (now + 40).to_string();
        let ctx = Context::new("r", &config).with(Header::DeadlineMs, &at);
        let ms = Deadline::of(&ctx).poll_ms();
        assert!((1..=20).contains(&ms), "half of a short remainder: {ms}");
    }

    #[test]
    fn min_prefers_the_earlier_and_ignores_none() {
        let soon = Deadline::after_ms(10);
        let late = Deadline::after_ms(10_000);
        assert!(soon.min(late).poll_ms() <= 10);
        assert!(Deadline::NONE.min(late).poll_ms() > 9_000);
        assert_eq!(Deadline::NONE.min(Deadline::NONE).poll_ms(), -1);
        assert!(Deadline::after_ms(0).passed());
    }
}
