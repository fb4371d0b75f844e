//! Latency summaries and ratios: the arithmetic every scenario shares.
//!
//! Latencies are kept as plain vectors of nanoseconds and sorted once: a run
//! records at most a few hundred thousand deliveries, so exact percentiles are
//! cheaper to reason about than a bucketed histogram. A ratio is always "rcimd's
//! figure divided by the baseline's", printed with the direction that is better,
//! so a reader never has to guess whether 0.3 is good.

use serde::{Deserialize, Serialize};

/// Percentiles of one latency distribution, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarises `samples_ns` (nanoseconds; sorted in place). An empty input gives
    /// all zeros with `count` 0.
    pub fn of(samples_ns: &mut [u64]) -> Self {
        if samples_ns.is_empty() {
            return Self::default();
        }
        samples_ns.sort_unstable();
        let us = |ns: u64| ns as f64 / 1_000.0;
        let sum: u128 = samples_ns.iter().map(|&v| u128::from(v)).sum();
        Self {
            count: samples_ns.len(),
            p50_us: us(percentile(samples_ns, 50.0)),
            p99_us: us(percentile(samples_ns, 99.0)),
            p999_us: us(percentile(samples_ns, 99.9)),
            max_us: us(samples_ns[samples_ns.len() - 1]),
            mean_us: sum as f64 / samples_ns.len() as f64 / 1_000.0,
        }
    }
}

/// The `p`th percentile (nearest rank) of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    debug_assert!(!sorted.is_empty());
    // The epsilon keeps 99.9% of 1,000 at rank 999 despite binary rounding.
    let rank = (p / 100.0 * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `ours / baseline`, or `None` when the baseline is missing or zero.
pub fn ratio(ours: f64, baseline: Option<f64>) -> Option<f64> {
    match baseline {
        Some(b) if b > 0.0 && b.is_finite() && ours.is_finite() => Some(ours / b),
        _ => None,
    }
}

/// A ratio for a table cell: `×1.23`, or `n/a` when there is none.
pub fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("×{r:.0}"),
        Some(r) if r >= 10.0 => format!("×{r:.1}"),
        Some(r) => format!("×{r:.2}"),
        None => "n/a".into(),
    }
}

/// A rate for a table cell: `1.23 M/s`, `456 k/s`, `789 /s`.
pub fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.0} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

/// A duration in microseconds for a table cell: `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

/// Median of `values` (sorted in place); 0 for none.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<u64> = (1..=1000).rev().map(|v| v * 1_000).collect();
        let s = Summary::of(&mut samples);
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500.0);
        assert_eq!(s.p99_us, 990.0);
        assert_eq!(s.p999_us, 999.0);
        assert_eq!(s.max_us, 1000.0);
        assert!((s.mean_us - 500.5).abs() < 1e-9);
        assert_eq!(percentile(&[7], 99.9), 7);
        assert_eq!(Summary::of(&mut []).count, 0);
    }

    #[test]
    fn ratios_need_a_baseline() {
        assert_eq!(ratio(3.0, Some(2.0)), Some(1.5));
        assert_eq!(ratio(3.0, Some(0.0)), None);
        assert_eq!(ratio(3.0, None), None);
        assert_eq!(fmt_ratio(Some(0.256)), "×0.26");
        assert_eq!(fmt_ratio(Some(15.04)), "×15.0");
        assert_eq!(fmt_ratio(None), "n/a");
        assert_eq!(fmt_rate(1_234_567.0), "1.23 M/s");
        assert_eq!(fmt_rate(45_600.0), "46 k/s");
        assert_eq!(fmt_us(1_500.0), "1.50 ms");
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
