//! The algorithm behind [`super::Limiter`], pure and driven by [`State::acquired`] and
//! [`State::released`]: a hill climb on measured throughput (probes), with a latency guard and a
//! back-off on overload.
//!
//! **Windows.** Requests are measured in windows of `max(limit in force, MIN_WINDOW)` finished
//! requests, about one round trip. After each change of the limit in force, the requests let
//! in before it and the first `limit in force` let in after it are left out (those meet a server
//! still settling from the change; during a climb, only those let in at once by the rise). A window gives two figures: its *latency* (send to answer,
//! a mean without the slowest eighth) and its *throughput*: the permits in use, averaged over
//! the window's time, over the mean time a permit was held (Little's law, so that rate waits
//! count and answers that come in bunches do not skew it).
//!
//! **Probes.** Every few windows the limit is tried one step up (when the callers kept most
//! permits in use) or down (when the recent latency is above [`ELEVATED`] times the no-load
//! latency: a queue may have formed), alternately when both apply, for one window. The probe
//! is kept when it pays: going up by a share `s` must raise the throughput by at least
//! [`PAY`]` × s`; going down by `s` may cost at most `PAY × s`. The two windows compared are
//! adjacent, so noise that moves every latency alike (a busy machine) mostly cancels out.
//! - **Slow start.** The first probe doubles the limit, and so does each next one while every
//!   probe has paid twice over (4 → 8 → 16 → 32 against a roomy server, one probe window
//!   each); the first probe that does not pay twice over ends it for good.
//! - A probe up that paid twice over (`2 × PAY × s` above the bar) is followed at once by
//!   another with twice the step (at most the limit: ×2 per window): the climb from the start.
//! - Otherwise the next probe waits [`PROBE_GAP`] windows; after a probe that did not pay, or
//!   paid only just, the step falls back to [`STEP`] of the limit and the wait doubles, up to
//!   [`MAX_PROBE_GAP`] windows (near the best limit, probes become rare and cheap).
//!
//! **Guard.** Two windows running whose latency is above [`GUARD`] times the no-load latency
//! halve the limit (a server that lost most of its capacity). **Back-off.** A window in which
//! more than [`OVERLOAD_SHARE`] of the requests ended in an overload outcome (5xx, timeout,
//! refused connection) ends there and multiplies the limit by [`BACKOFF`]: once per round trip
//! while they last. Fewer are a flaky server's or proxy's noise, which retries absorb: cutting
//! on each would hold a server with 5 % random 503s at a limit of 1 or 2, whatever its
//! capacity.
//!
//! The no-load latency is a low percentile of the last [`BASELINE_WINDOWS`] windows' latencies:
//! it follows a server that became slower for good, and probes down refresh it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::Outcome;

/// Factor applied to the limit after a window of overload answers.
pub(crate) const BACKOFF: f64 = 0.75;
/// A window in which more than this share of its requests (counted against its full size)
/// ended in an overload answer cuts the limit by [`BACKOFF`].
pub(crate) const OVERLOAD_SHARE: f64 = 0.25;
/// A probe pays when the throughput moves by at least this share of the limit's move (up), or
/// by at most this share of it (down).
pub(crate) const PAY: f64 = 0.2;
/// The first step of a probe, as a share of the limit (at least 1).
pub(crate) const STEP: f64 = 0.125;
/// Windows at the limit between a probe and the next one.
pub(crate) const PROBE_GAP: u32 = 2;
/// The most windows between two probes.
pub(crate) const MAX_PROBE_GAP: u32 = 16;
/// A recent latency above this many times the no-load latency leads to probes down (below it
/// there is no queue to shorten: fewer requests in flight would only bring fewer answers).
pub(crate) const ELEVATED: f64 = 1.05;
/// Two windows running above this many times the no-load latency halve the limit.
pub(crate) const GUARD: f64 = 2.0;
/// Windows whose latencies make up the no-load latency (their 10th percentile).
pub(crate) const BASELINE_WINDOWS: usize = 64;
/// A window at the limit whose permits were in use less than this share of its time, on
/// average, starts no probe up: the callers, not the server, hold the throughput back.
pub(crate) const SATURATED: f64 = 0.75;
/// The fewest samples in a window.
pub(crate) const MIN_WINDOW: u32 = 8;

/// The current window's samples.
#[derive(Debug, Default)]
struct Window {
    /// Send to answer, per request.
    latencies: Vec<Duration>,
    /// Permit granted to permit returned, per request.
    holds: Vec<Duration>,
    /// Permits in use × seconds, since the window opened.
    in_use_secs: f64,
    /// Requests that ended in an overload answer.
    overloads: u32,
    /// More than [`OVERLOAD_SHARE`] of the window did.
    overloaded: bool,
}

/// When a request was let in, for its sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Admission {
    epoch: u64,
    /// Let in once the last change had settled: its latency counts.
    settled: bool,
}

/// What one window measured.
#[derive(Debug, Clone, Copy)]
struct Measure {
    latency: Duration,
    /// Requests per second.
    rate: f64,
    /// Permits in use, on average over the window's time.
    in_use: f64,
}

/// The limiter's state.
#[derive(Debug)]
pub(super) struct State {
    adaptive: bool,
    max: u32,
    /// The limit found so far (what progress and the summary show).
    limit: u32,
    /// The limit in force: `limit`, or a probe above or below it.
    applied: u32,
    highest: u32,
    /// The direction of the probe in force (`true`: up).
    probe: Option<bool>,
    /// The probe in force follows one that paid twice over (a climb).
    climbing: bool,
    step: u32,
    /// Windows at the limit before the next probe, and after the next one that does not pay.
    gap: u32,
    next_gap: u32,
    next_up: bool,
    /// The last window at `limit`.
    base: Option<Measure>,
    over_guard: bool,
    /// Probes down that paid since the last change (one more must pay before the limit falls).
    down_votes: u32,
    /// Latencies of the last windows, for the no-load latency.
    latencies: VecDeque<Duration>,
    /// Recent latency at the limit, smoothed (about four windows).
    recent: Option<Duration>,
    /// When the current window opened, and when the permits in use last changed.
    opened: Option<Instant>,
    changed: Option<Instant>,
    window: Window,
    /// Permits handed out by the semaphore in total.
    pub(super) permits: u32,
    /// Permits to take back as they are returned (the limit fell below what is in use).
    pub(super) debt: u32,
    in_flight: u32,
    /// Bumped at every change of the limit in force: a request let in before says nothing
    /// about the new one.
    epoch: u64,
    /// Requests still to let in before samples count again after a change.
    settling: u32,
}

impl State {
    /// A limit between 1 and `max` starting at `initial`; fixed unless `adaptive`.
    pub(super) fn new(initial: u32, max: u32, adaptive: bool) -> State {
        let max = max.max(1);
        let initial = initial.clamp(1, max);
        State {
            adaptive,
            max,
            limit: initial,
            applied: initial,
            highest: initial,
            probe: None,
            climbing: false,
            // Slow start: the first probes double the limit while each pays twice over.
            step: initial,
            gap: 0,
            next_gap: PROBE_GAP,
            next_up: true,
            base: None,
            over_guard: false,
            down_votes: 0,
            latencies: VecDeque::with_capacity(BASELINE_WINDOWS),
            recent: None,
            opened: None,
            changed: None,
            window: Window::default(),
            permits: initial,
            debt: 0,
            in_flight: 0,
            epoch: 0,
            settling: 0,
        }
    }

    /// The limit found so far (a probe in force is not shown).
    pub(super) fn limit(&self) -> u32 {
        self.limit
    }

    /// The limit the semaphore enforces now.
    pub(super) fn applied(&self) -> u32 {
        self.applied
    }

    /// The highest limit found so far.
    pub(super) fn highest(&self) -> u32 {
        self.highest
    }

    /// Permits out now.
    pub(super) fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Counts the permits in use over the time since they last changed.
    fn account(&mut self, now: Instant) {
        if let Some(t) = self.changed {
            self.window.in_use_secs += f64::from(self.in_flight) * (now - t).as_secs_f64();
        }
        self.changed = Some(now);
        self.opened.get_or_insert(now);
    }

    /// One more permit out: its [`Admission`].
    pub(super) fn acquired(&mut self, now: Instant) -> Admission {
        self.account(now);
        self.in_flight += 1;
        let settled = self.settling == 0;
        if !settled {
            self.settling -= 1;
            if self.settling == 0 {
                // The window's time starts now.
                self.window.in_use_secs = 0.0;
                self.opened = Some(now);
            }
        }
        Admission {
            epoch: self.epoch,
            settled,
        }
    }

    /// A permit back from a request let in as `admission`, held for `hold` of which `latency`
    /// was spent waiting for the answer.
    pub(super) fn released(
        &mut self,
        now: Instant,
        admission: Admission,
        (latency, hold): (Duration, Duration),
        outcome: Outcome,
    ) {
        self.account(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        let counts = match outcome {
            Outcome::Success => admission.settled,
            Outcome::Overload => true,
            Outcome::Ignore => false,
        };
        if !self.adaptive || !counts || admission.epoch < self.epoch {
            return;
        }
        let w = &mut self.window;
        if outcome == Outcome::Overload {
            w.overloads += 1;
        } else {
            w.latencies.push(latency);
            w.holds.push(hold.max(latency));
        }
        let size = self.applied.max(MIN_WINDOW);
        w.overloaded = f64::from(w.overloads) > OVERLOAD_SHARE * f64::from(size);
        if !w.overloaded && (w.latencies.len() as u32 + w.overloads) < size {
            return;
        }
        let mut w = std::mem::take(&mut self.window);
        let open = self.opened.map_or(Duration::ZERO, |t| now - t);
        w.in_use_secs /= open.as_secs_f64().max(1e-9);
        self.opened = Some(now);
        let before = self.applied;
        self.close(&w);
        self.highest = self.highest.max(self.limit);
        if self.applied != before {
            self.epoch += 1;
            // In a climb, far below the best limit, the burst let in by the rise is enough to
            // leave out; elsewhere a whole round (a server takes that long to settle).
            self.settling = match self.climbing {
                true => self.applied - before,
                false => self.applied,
            };
        }
    }

    /// The decision at the end of a window.
    fn close(&mut self, w: &Window) {
        if w.overloaded {
            self.cut(BACKOFF);
            return;
        }
        let Some(m) = measure(w) else {
            return;
        };
        if self.latencies.len() == BASELINE_WINDOWS {
            self.latencies.pop_front();
        }
        self.latencies.push_back(m.latency);
        let mut sorted: Vec<Duration> = self.latencies.iter().copied().collect();
        sorted.sort_unstable();
        let baseline = sorted[sorted.len() / 10];
        tracing::trace!(
            limit = self.limit,
            applied = self.applied,
            latency = ?m.latency,
            rate = m.rate,
            in_use = m.in_use,
            ?baseline,
            "limiter window"
        );
        match self.probe.take() {
            Some(up) => self.judge(up, m),
            None => self.at_limit(m, baseline),
        }
    }

    /// A window at the limit: the guard, then maybe a probe.
    fn at_limit(&mut self, m: Measure, baseline: Duration) {
        if m.latency > baseline.mul_f64(GUARD) {
            if self.over_guard {
                self.cut(0.5);
                return;
            }
            self.over_guard = true;
        } else {
            self.over_guard = false;
        }
        self.base = Some(m);
        let recent = self
            .recent
            .map_or(m.latency, |r| r.mul_f64(0.75) + m.latency.mul_f64(0.25));
        self.recent = Some(recent);
        if self.gap > 0 {
            self.gap -= 1;
            return;
        }
        let up = self.limit < self.max && m.in_use >= SATURATED * f64::from(self.limit);
        let down = self.limit > 1 && recent > baseline.mul_f64(ELEVATED);
        match (up, down) {
            (true, true) => self.start_probe(self.next_up),
            (true, false) => self.start_probe(true),
            (false, true) => self.start_probe(false),
            (false, false) => {}
        }
    }

    /// Tries the limit one step up or down for a window.
    fn start_probe(&mut self, up: bool) {
        self.applied = if up {
            (self.limit + self.step).min(self.max)
        } else {
            self.limit.saturating_sub(self.step).max(1)
        };
        self.probe = Some(up);
    }

    /// The end of a probe: keep it if it paid, else back to the limit.
    fn judge(&mut self, up: bool, m: Measure) {
        let probed = self.applied;
        self.applied = self.limit;
        let Some(base) = self.base else {
            return;
        };
        let added = f64::from(probed) - f64::from(self.limit);
        if up && m.in_use - base.in_use < added / 2.0 {
            // Inconclusive: the callers did not use the probe's permits.
            self.gap = PROBE_GAP;
            return;
        }
        let moved = added / f64::from(self.limit);
        let margin = m.rate / base.rate.max(1e-9) - 1.0 - moved * PAY;
        let strongly = margin >= 2.0 * moved.abs() * PAY;
        if !up && margin >= 0.0 && !self.confirmed_down() {
            // A machine that sped up during the probe makes any probe down look as if it paid:
            // a second probe down must pay too before the limit falls.
            return;
        }
        self.down_votes = 0;
        if margin >= 0.0 {
            self.limit = probed;
            self.applied = probed;
            self.base = Some(m);
        }
        // Only upwards at once: going down far and fast is the guard's job, and a probe down
        // that paid because the machine sped up meanwhile must not be followed by more.
        self.climbing = strongly && up && self.limit < self.max;
        if self.climbing {
            self.next_gap = PROBE_GAP;
            self.step = (self.step * 2).min(self.limit).max(1);
            self.start_probe(true);
            return;
        }
        self.step = first_step(self.limit);
        self.next_up = !up;
        if strongly || (margin >= 0.0 && up) {
            // A rise that paid: there may be more room; look again soon.
            self.gap = PROBE_GAP;
            self.next_gap = PROBE_GAP;
        } else {
            self.gap = self.next_gap;
            self.next_gap = (self.next_gap * 2).min(MAX_PROBE_GAP);
        }
    }

    /// Counts a probe down that paid: `true` when it is the second running (then keep it),
    /// else asks for another probe down soon.
    fn confirmed_down(&mut self) -> bool {
        if self.down_votes >= 1 {
            return true;
        }
        self.down_votes = 1;
        self.next_up = false;
        self.gap = PROBE_GAP;
        false
    }

    /// Scales the limit down by `factor` and starts measuring afresh.
    fn cut(&mut self, factor: f64) {
        self.limit = ((f64::from(self.limit) * factor).floor() as u32).max(1);
        self.applied = self.limit;
        self.probe = None;
        self.climbing = false;
        self.base = None;
        self.over_guard = false;
        self.down_votes = 0;
        self.step = first_step(self.limit);
        self.gap = PROBE_GAP;
        self.next_gap = PROBE_GAP;
    }
}

/// Latency and throughput of a window whose `in_use_secs` was turned into the mean permits in
/// use (`None` without a timed sample).
fn measure(w: &Window) -> Option<Measure> {
    let latency = trimmed_mean(&w.latencies)?;
    // Little's law needs the plain mean.
    let count = u32::try_from(w.holds.len()).ok()?;
    let hold = w.holds.iter().sum::<Duration>().checked_div(count)?;
    Some(Measure {
        latency,
        rate: w.in_use_secs / hold.as_secs_f64().max(1e-9),
        in_use: w.in_use_secs,
    })
}

/// The first step of a probe from `limit`.
fn first_step(limit: u32) -> u32 {
    ((f64::from(limit) * STEP).round() as u32).max(1)
}

/// The mean without the slowest eighth (noise: a stalled process, a GC pause).
fn trimmed_mean(samples: &[Duration]) -> Option<Duration> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let keep = v.len() - v.len() / 8;
    let kept = &v[..keep];
    let count = u32::try_from(kept.len()).ok()?;
    kept.iter().sum::<Duration>().checked_div(count)
}
