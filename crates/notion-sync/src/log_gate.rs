//! Rate-limited log lines for what anyone on the internet can trigger (bad signatures,
//! handshakes, refused connections): at most one line per [`INTERVAL`] per gate, which
//! says how many like it were suppressed since the last one. The metrics count each.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per gate in this period.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// One kind of line.
#[derive(Debug, Default)]
pub struct LogGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogGate {
    /// Runs `line` (which writes the log line, given how many were suppressed since the
    /// previous one) unless a line of this gate was written less than [`INTERVAL`] ago.
    pub fn warn(&self, line: impl FnOnce(u64)) {
        let suppressed = {
            let mut s = self.state.lock().expect("log gate lock");
            let now = Instant::now();
            if s.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
                s.suppressed += 1;
                return;
            }
            s.last = Some(now);
            std::mem::take(&mut s.suppressed)
        };
        line(suppressed);
    }
}

/// The webhook path's log lines anyone can trigger, each at most once a minute.
#[derive(Debug, Default)]
pub struct WebhookLogs {
    pub unsigned: LogGate,
    pub bad_signature: LogGate,
    pub no_secret: LogGate,
    pub too_large: LogGate,
    pub body_timeout: LogGate,
    pub replay: LogGate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let gate = LogGate::default();
        let mut lines = Vec::new();
        for _ in 0..1000 {
            gate.warn(|n| lines.push(n));
        }
        assert_eq!(lines, vec![0]);
        // The next interval's first line carries the count.
        gate.state.lock().unwrap().last = Some(Instant::now() - INTERVAL);
        gate.warn(|n| lines.push(n));
        assert_eq!(lines, vec![0, 999]);
    }
}
