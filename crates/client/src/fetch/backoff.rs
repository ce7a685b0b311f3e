//! Exponential backoff with full jitter, shared by manifest fetches and telemetry uploads.
//!
//! Full jitter (a uniform delay in `[0, window]`, the window doubling per failure) spreads
//! clients that failed together over the whole window, so a server coming back is not met by
//! all of them at once.

use std::time::Duration;

use jiff::Timestamp;

use crate::RandomSource;

/// The shortest delay before a retry, whatever the random draw or the server says.
pub const MIN_DELAY: Duration = Duration::from_secs(1);

/// The delay before the next attempt after `failures` consecutive failures (counting the one
/// just seen; 0 is treated as 1): `uniform * min(max, base * 2^(failures - 1))`, at least
/// [`MIN_DELAY`] and at most `max`. A `max` below [`MIN_DELAY`] counts as [`MIN_DELAY`].
/// A `random` value outside [0, 1] is clamped (a non-finite one counts as 0), so a faulty
/// source cannot make the delay negative or unbounded.
pub fn backoff_delay(
    failures: u32,
    base: Duration,
    max: Duration,
    random: &mut dyn RandomSource,
) -> Duration {
    let max = max.max(MIN_DELAY);
    let window = 2u32
        .checked_pow(failures.saturating_sub(1))
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |w| w.min(max));
    let u = random.uniform();
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // The float product can round just past a huge window; the window itself is then right.
    let delay = Duration::try_from_secs_f64(window.as_secs_f64() * u).unwrap_or(window);
    delay.clamp(MIN_DELAY, max)
}

/// The delay a `Retry-After` header value asks for: delay-seconds or an HTTP date (a date in
/// the past gives zero). `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail, and a huge value is capped by the caller.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// Counts one more failure in `failures` and sets `next_at` to when the next attempt may be
/// made: after `retry_after` when the server gave one (clamped to [`MIN_DELAY`]..`max`, so a
/// server cannot silence clients longer than the policy allows), else after
/// [`backoff_delay`]. Returns that time.
pub(crate) fn schedule_retry(
    failures: &mut u32,
    next_at: &mut Option<Timestamp>,
    retry_after: Option<Duration>,
    base: Duration,
    max: Duration,
    now: Timestamp,
    random: &mut dyn RandomSource,
) -> Timestamp {
    *failures = failures.saturating_add(1);
    let delay = match retry_after {
        Some(asked) => asked.clamp(MIN_DELAY, max.max(MIN_DELAY)),
        None => backoff_delay(*failures, base, max, random),
    };
    let at = now.checked_add(delay).unwrap_or(Timestamp::MAX);
    *next_at = Some(at);
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedRandom;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn delay(failures: u32, u: f64) -> Duration {
        backoff_delay(failures, MIN, 6 * HOUR, &mut FixedRandom::new(vec![u]))
    }

    #[test]
    fn the_window_doubles_up_to_the_maximum() {
        assert_eq!(delay(0, 0.5), Duration::from_secs(30));
        assert_eq!(delay(1, 0.5), Duration::from_secs(30));
        assert_eq!(delay(2, 0.5), Duration::from_secs(60));
        assert_eq!(delay(3, 0.5), Duration::from_secs(120));
        assert_eq!(delay(9, 1.0), Duration::from_secs(256 * 60));
        assert_eq!(delay(10, 1.0), 6 * HOUR);
        assert_eq!(delay(u32::MAX, 1.0), 6 * HOUR);
    }

    #[test]
    fn faulty_random_values_stay_in_bounds() {
        assert_eq!(delay(3, 0.0), MIN_DELAY);
        assert_eq!(delay(3, -5.0), MIN_DELAY);
        assert_eq!(delay(3, f64::NAN), MIN_DELAY);
        assert_eq!(delay(3, f64::INFINITY), MIN_DELAY);
        assert_eq!(delay(3, 7.0), Duration::from_secs(240));
        let huge = backoff_delay(
            64,
            Duration::MAX,
            Duration::MAX,
            &mut FixedRandom::new(vec![1.0]),
        );
        assert_eq!(huge, Duration::MAX);
        let tiny = backoff_delay(
            5,
            Duration::from_millis(1),
            Duration::ZERO,
            &mut FixedRandom::new(vec![0.9]),
        );
        assert_eq!(tiny, MIN_DELAY);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:02:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn a_retry_after_is_clamped_and_counts_as_a_failure() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let (mut failures, mut next) = (2, None);
        let mut random = FixedRandom::new(vec![]);
        let at = schedule_retry(
            &mut failures,
            &mut next,
            Some(Duration::from_secs(365 * 86400)),
            MIN,
            6 * HOUR,
            now,
            &mut random,
        );
        assert_eq!(at, "2026-01-01T06:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!((failures, next), (3, Some(at)));
        let at = schedule_retry(
            &mut failures,
            &mut next,
            Some(Duration::ZERO),
            MIN,
            6 * HOUR,
            now,
            &mut random,
        );
        assert_eq!(at, "2026-01-01T00:00:01Z".parse::<Timestamp>().unwrap());
        let at = schedule_retry(
            &mut failures,
            &mut next,
            None,
            MIN,
            Duration::MAX,
            Timestamp::MAX,
            &mut random,
        );
        assert_eq!(at, Timestamp::MAX, "saturates instead of overflowing");
    }
}
