//! The callback deadline, on CPU time: a guest call is interrupted when it has been *running* too long, not
//! when the worker thread was kept off the CPU.
//!
//! Epoch interruption (wasmtime's cheap check in every loop and function entry) measures wall-clock time. On a
//! busy or throttled host (a container at its CPU quota is stopped for the rest of each 100 ms period) a call
//! that needs 1 ms of CPU can take more than the deadline in wall time, and was interrupted: a JWT check failed
//! with `wasm trap: interrupt` while the machine compiled in the background. Now the epoch deadline only
//! triggers a check. The first check, at half the deadline, notes the thread's CPU time; each later check, half
//! a deadline after the last, interrupts the call if the thread spent at least half of that interval on the CPU
//! (the guest was running, not waiting for a core), and otherwise lets it go on. A guest in a loop is thus
//! stopped after about one deadline, as before; a starved one is stopped only after [`WALL_CHECKS`] checks
//! (five deadlines of wall time), whatever its CPU. Reading the thread's CPU clock is a system call, so it is
//! read only at these checks, never per call.

use std::time::Duration;
use wasmtime::UpdateDeadline;

/// Checks after which a call is interrupted whatever CPU it used: ten half-deadlines, five deadlines of wall
/// time.
pub const WALL_CHECKS: u32 = 10;

/// The CPU time this thread has used, or `None` when the clock cannot be read (then the wall-clock deadline
/// applies, as before this module).
pub fn thread_cpu_time() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(u64::try_from(t.tv_sec).ok()?, u32::try_from(t.tv_nsec).ok()?))
}

/// What the checks of the running call have seen; reset before every call into the guest.
#[derive(Debug, Default, Clone, Copy)]
pub struct Watch {
    checks: u32,
    cpu_at_last_check: Option<Duration>,
}

impl Watch {
    /// One check, `interval` (half the deadline, in wall time) after the call started or the last check, with
    /// the thread's CPU time `cpu_now`: interrupt, or go on for `interval_ticks` more epoch ticks.
    pub fn check(&mut self, cpu_now: Option<Duration>, interval: Duration, interval_ticks: u64) -> UpdateDeadline {
        self.checks += 1;
        if self.checks >= WALL_CHECKS {
            return UpdateDeadline::Interrupt;
        }
        let Some(now) = cpu_now else {
            // No CPU clock: the wall-clock deadline, at the second check as before.
            return if self.checks >= 2 { UpdateDeadline::Interrupt } else { UpdateDeadline::Continue(interval_ticks) };
        };
        let running = match self.cpu_at_last_check.replace(now) {
            // The first check: nothing to compare with yet.
            None => false,
            Some(before) => now.saturating_sub(before) * 2 >= interval,
        };
        if running {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(interval_ticks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF: Duration = Duration::from_millis(50);

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    /// The outcome of a run of checks, `true` where the call is interrupted.
    fn run(cpu: &[Option<Duration>]) -> Vec<bool> {
        let mut watch = Watch::default();
        cpu.iter().map(|now| matches!(watch.check(*now, HALF, 10), UpdateDeadline::Interrupt)).collect()
    }

    /// One row: what the thread's CPU clock read at each check, and where the call is interrupted.
    struct Row {
        name: &'static str,
        cpu: Vec<Option<Duration>>,
        stopped: Vec<bool>,
    }

    #[test]
    fn the_checks_table() {
        let table = [
            // On the CPU the whole time: stopped at the second check, one deadline after the start.
            Row { name: "a loop", cpu: vec![ms(50), ms(100)], stopped: vec![false, true] },
            // Half the interval on the CPU is enough to be stopped.
            Row { name: "a loop sharing its core", cpu: vec![ms(50), ms(75)], stopped: vec![false, true] },
            // Kept off the CPU: goes on, then is stopped once it runs again.
            Row {
                name: "a starved call",
                cpu: vec![ms(20), ms(25), ms(30), ms(31), ms(60)],
                stopped: vec![false, false, false, false, true],
            },
            // No CPU clock: the wall-clock deadline, one deadline (two checks) after the start.
            Row { name: "no clock", cpu: vec![None, None], stopped: vec![false, true] },
        ];
        for row in table {
            assert_eq!(run(&row.cpu), row.stopped, "{}", row.name);
        }
    }

    #[test]
    fn a_starved_call_is_stopped_after_the_wall_clock_bound() {
        let starved: Vec<Option<Duration>> = (0..WALL_CHECKS as u64).map(|i| ms(10 + i)).collect();
        let outcome = run(&starved);
        let first = outcome.iter().position(|stopped| *stopped);
        assert_eq!(first, Some(WALL_CHECKS as usize - 1), "{outcome:?}");
    }

    #[test]
    fn the_thread_clock_reads_and_advances_with_work() {
        let before = thread_cpu_time().expect("CLOCK_THREAD_CPUTIME_ID is readable on Linux");
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(20) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = thread_cpu_time().expect("readable");
        assert!(after > before, "{before:?} -> {after:?}");
    }
}
