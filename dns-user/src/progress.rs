//! How far a long load has got, logged every few seconds (`example.com.: 412,000 / 1,000,000
//! record sets read`), so an operator starting a daemon on a large zone sees it working. Short
//! jobs log nothing; a job that logged progress logs its end with its duration.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Time between two progress lines.
pub const INTERVAL: Duration = Duration::from_secs(3);

/// Progress of one job: `what` (`example.com.: record sets read`), out of `total` if known.
pub struct Progress {
    what: String,
    total: Option<usize>,
    started: Instant,
    next: Cell<Instant>,
    logged: Cell<bool>,
}

/// `n` with thousands separators: 1,000,000.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Progress {
    pub fn new(what: impl Into<String>, total: Option<usize>) -> Progress {
        let started = Instant::now();
        Progress {
            what: what.into(),
            total,
            started,
            next: Cell::new(started + INTERVAL),
            logged: Cell::new(false),
        }
    }

    /// `done` items so far; logs when the interval has passed (the clock is read once every
    /// 1,024 items, so a tight loop may call this on each).
    pub fn update(&self, done: usize) {
        if done % 1024 != 0 {
            return;
        }
        let now = Instant::now();
        if now < self.next.get() {
            return;
        }
        self.next.set(now + INTERVAL);
        self.logged.set(true);
        tracing::info!("{}", self.line(done));
    }

    fn line(&self, done: usize) -> String {
        match self.total {
            Some(total) => format!(
                "{}: {} / {} ({}%)",
                self.what,
                count(done),
                count(total),
                done * 100 / total.max(1)
            ),
            None => format!("{}: {}", self.what, count(done)),
        }
    }

    /// The job is over, `done` items in all.
    pub fn finish(self, done: usize) {
        if self.logged.get() {
            tracing::info!(
                "{} in {:.1} s",
                self.line(done),
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_000_000), "1,000,000");
        let p = Progress::new("example.com.: record sets read", Some(1_000_000));
        assert_eq!(
            p.line(412_000),
            "example.com.: record sets read: 412,000 / 1,000,000 (41%)"
        );
        let p = Progress::new("zone.db: records read", None);
        assert_eq!(p.line(5_000), "zone.db: records read: 5,000");
    }
}
