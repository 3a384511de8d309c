//! What a 429 asks: how long to wait, and how precisely the server said it. The body's
//! `details.retry_after_ms` wins (exact), else `Retry-After` (whole seconds, rounded up by the
//! server), else `X-RateLimit-Reset` (an ISO time, taken against the answer's `Date`, else the
//! local clock). Pure functions, tested here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, DATE, RETRY_AFTER};

use super::rate::Delay;

/// The longest delay taken from an answer: a hostile `Retry-After` (or a wrong clock behind a
/// reset time) must not stall a run for days, nor overflow the clock.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(300);

/// The delay an answer (a 429, a 503) asks for, if it names one, at most [`MAX_DELAY`].
pub(crate) fn requested_delay(headers: &HeaderMap, body: &[u8]) -> Option<Delay> {
    let mut delay = asked(headers, body)?;
    delay.wait = delay.wait.min(MAX_DELAY);
    Some(delay)
}

/// The delay a 429 asks for (see [`requested_delay`]).
pub(crate) fn delay_of_429(headers: &HeaderMap, body: &[u8]) -> Option<Delay> {
    requested_delay(headers, body)
}

/// The delay as asked, uncapped.
fn asked(headers: &HeaderMap, body: &[u8]) -> Option<Delay> {
    body_delay(body)
        .map(|wait| Delay {
            wait,
            slack: Some(Duration::ZERO),
        })
        .or_else(|| {
            header_seconds(headers).map(|wait| Delay {
                wait,
                slack: Some(Duration::from_secs(1)),
            })
        })
        .or_else(|| reset_delay(headers).map(|wait| Delay { wait, slack: None }))
}

/// `error.details.retry_after_ms` of the envelope.
fn body_delay(body: &[u8]) -> Option<Duration> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let ms = json
        .get("error")?
        .get("details")?
        .get("retry_after_ms")?
        .as_u64()?;
    Some(Duration::from_millis(ms))
}

/// `Retry-After` in whole seconds.
fn header_seconds(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// `X-RateLimit-Reset` minus the server's `Date` (or our clock when it sent none).
fn reset_delay(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| headers.get(name)?.to_str().ok();
    let reset = DateTime::parse_from_rfc3339(text("x-ratelimit-reset")?.trim()).ok()?;
    let now = text(DATE.as_str())
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map_or_else(Utc::now, |d| d.with_timezone(&Utc));
    (reset.with_timezone(&Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// The headers and body of capture 40 (alga-api/captures), verbatim.
    const CAPTURE_40_BODY: &[u8] = br#"{"error":{"code":"RATE_LIMITED","message":"Too many requests","details":{"retry_after_ms":545,"remaining":0}}}"#;

    fn capture_40_headers() -> HeaderMap {
        headers(&[
            ("retry-after", "1"),
            ("x-ratelimit-limit", "120"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "2026-11-28T05:33:38.672Z"),
            ("date", "Sat, 28 Nov 2026 05:33:38 GMT"),
        ])
    }

    #[test]
    fn the_body_wins_then_retry_after_then_the_reset_time() {
        let h = capture_40_headers();
        assert_eq!(
            delay_of_429(&h, CAPTURE_40_BODY),
            Some(Delay {
                wait: Duration::from_millis(545),
                slack: Some(Duration::ZERO)
            })
        );
        assert_eq!(
            delay_of_429(&h, b"Too Many Requests"),
            Some(Delay {
                wait: Duration::from_secs(1),
                slack: Some(Duration::from_secs(1))
            })
        );
        let mut no_retry_after = h.clone();
        no_retry_after.remove(RETRY_AFTER);
        assert_eq!(
            delay_of_429(&no_retry_after, b""),
            Some(Delay {
                wait: Duration::from_millis(672),
                slack: None
            })
        );
        assert_eq!(delay_of_429(&HeaderMap::new(), b"{}"), None);
    }

    #[test]
    fn a_reset_time_in_the_past_or_far_future_is_bounded() {
        let past = headers(&[
            ("x-ratelimit-reset", "2026-11-28T05:33:30.000Z"),
            ("date", "Sat, 28 Nov 2026 05:33:38 GMT"),
        ]);
        assert_eq!(delay_of_429(&past, b""), None);
        let far = headers(&[
            ("x-ratelimit-reset", "2027-11-28T05:33:30.000Z"),
            ("date", "Sat, 28 Nov 2026 05:33:38 GMT"),
        ]);
        assert_eq!(delay_of_429(&far, b"").map(|d| d.wait), Some(MAX_DELAY));
    }
}
