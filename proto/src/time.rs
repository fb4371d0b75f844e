//! Wall-clock time as rcim writes it: milliseconds since the Unix epoch, and the
//! same instant as a UTC calendar date for people.
//!
//! Every rcim process stamps messages, tokens and blocks with [`now_ms`], and both
//! the reference server (RC's `blockEndTime`) and `rcimctl` (message times) print
//! such stamps as `YYYY-MM-DD HH:MM:SS` in UTC with [`utc_datetime`]. They live in
//! this leaf crate so that there is one clock reading and one calendar conversion
//! for all of them, with no date library: Howard Hinnant's `civil_from_days` is a
//! dozen lines of integer arithmetic, exact for every `i64` day count we can meet.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in milliseconds since the Unix epoch: 0 if the clock is before
/// 1970, `i64::MAX` if it is implausibly far in the future (saturating, never
/// panicking, whatever the system clock says).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS` in UTC (proleptic Gregorian
/// calendar; times before 1970 count backwards, sub-second parts are dropped
/// towards the earlier second). Total: no `i64` panics.
pub fn utc_datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian `(year, month, day)`, month and
/// day counted from 1: Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>).
///
/// Exact for any day count an `i64` of milliseconds can reach (about ±1.07 × 10¹¹
/// days), which keeps every intermediate far from overflow.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01, so that a leap day is the last day of its
    // year, and count in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_of_day_counts() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (59, (1970, 3, 1)),
            (10_957, (2000, 1, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (-25_567, (1900, 1, 1)),
            (47_481, (2099, 12, 31)),
            (47_482, (2100, 1, 1)),
            (-719_468, (0, 3, 1)),
        ] {
            assert_eq!(civil_from_days(days), date, "day {days}");
        }
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // Walks 1900-01-01 ..= 2101-01-01 and checks each date is the next one.
        let mut last = civil_from_days(-25_568);
        for days in -25_567..=47_847 {
            let (y, m, d) = civil_from_days(days);
            let (ly, lm, ld) = last;
            let next_day = (y, m, d) == (ly, lm, ld + 1);
            let next_month = (y, m, d) == (ly, lm + 1, 1);
            let next_year = (y, m, d) == (ly + 1, 1, 1) && (lm, ld) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{last:?} -> {:?}",
                (y, m, d)
            );
            last = (y, m, d);
        }
    }

    #[test]
    fn utc_datetimes() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(1), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_datetime(1_700_000_000_999), "2023-11-14 22:13:20");
        assert_eq!(utc_datetime(1_764_259_501_000), "2025-11-27 16:05:01");
        assert_eq!(utc_datetime(4_102_444_799_000), "2099-12-31 23:59:59");
        assert_eq!(utc_datetime(-1), "1969-12-31 23:59:59");
        assert_eq!(utc_datetime(-1000), "1969-12-31 23:59:59");
        // The extremes do not overflow.
        assert!(utc_datetime(i64::MAX).starts_with("292278994-08-17"));
        assert!(utc_datetime(i64::MIN).starts_with("-292275055-05-16"));
    }

    #[test]
    fn now_is_after_2024() {
        // 2024-01-01 00:00:00 UTC; a clock before it is broken, not merely skewed.
        assert!(now_ms() > 1_704_067_200_000);
    }
}
