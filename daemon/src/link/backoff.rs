//! RC's reconnect schedule as a pure function.
//!
//! RC's SDK waits 0.05, 0.25, 0.5, 1, 2, 4, 8, 16 and 32 s between attempts, then
//! every 64 s for ever (spec §4.1). Each wait is spread by ±20 % so that many
//! daemons cut off by the same outage do not return in lockstep.

use std::time::Duration;

/// The waits of RC's schedule, in milliseconds; the last repeats for ever.
const SCHEDULE_MS: [u64; 10] = [
    50, 250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000,
];

/// How far jitter may move a wait, as a fraction of it.
pub const JITTER: f64 = 0.2;

/// The wait before retry number `retry` (1 = the first retry after a failure),
/// without jitter.
pub fn backoff(retry: u32) -> Duration {
    let index = (retry.max(1) as usize - 1).min(SCHEDULE_MS.len() - 1);
    Duration::from_millis(SCHEDULE_MS[index])
}

/// `base` moved by jitter: `unit` in `[0, 1)` maps onto `[-JITTER, +JITTER)`.
pub fn jittered(base: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    base.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit)
}

/// A uniformly distributed number in `[0, 1)` from the standard library's per-process
/// random hasher keys: enough for jitter, no extra dependency.
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rc_schedule() {
        let table = [
            (0, 50),
            (1, 50),
            (2, 250),
            (3, 500),
            (4, 1_000),
            (5, 2_000),
            (6, 4_000),
            (7, 8_000),
            (8, 16_000),
            (9, 32_000),
            (10, 64_000),
            (11, 64_000),
            (1_000, 64_000),
            (u32::MAX, 64_000),
        ];
        for (retry, ms) in table {
            assert_eq!(backoff(retry), Duration::from_millis(ms), "retry {retry}");
        }
    }

    #[test]
    fn jitter_stays_within_bounds() {
        for retry in 1..=12 {
            let base = backoff(retry);
            for unit in [0.0, 0.25, 0.5, 0.999_999, 1.0, -3.0, f64::NAN] {
                let wait = jittered(base, unit);
                assert!(
                    wait >= base.mul_f64(1.0 - JITTER),
                    "{retry} {unit} {wait:?}"
                );
                assert!(
                    wait <= base.mul_f64(1.0 + JITTER),
                    "{retry} {unit} {wait:?}"
                );
            }
        }
        assert_eq!(
            jittered(Duration::from_secs(10), 0.5),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn random_unit_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let first = draws[0];
        assert!(draws.iter().any(|u| *u != first));
    }
}
