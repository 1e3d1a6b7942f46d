//! The wall clock and the forms Lambda writes it in: epoch seconds and milliseconds, the
//! civil date of log stream names, ISO 8601 with milliseconds (the `time` of JSON log
//! lines), and the Common Log Format time of a function URL event's `requestContext.time`.
//! All UTC; no formatting machinery beyond `format!` of integers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The UTC civil date (year, month, day) of a Unix time in seconds (proleptic Gregorian
/// calendar; days are converted through 400-year eras of 146,097 days).
pub fn civil_date(unix_secs: u64) -> (u64, u64, u64) {
    let days = unix_secs / 86_400 + 719_468; // days since 0000-03-01
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Hours, minutes and seconds of the UTC day of a Unix time in seconds.
fn time_of_day(unix_secs: u64) -> (u64, u64, u64) {
    let secs = unix_secs % 86_400;
    (secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2026-12-02T15:04:05.123Z`: ISO 8601 in UTC with milliseconds, as Lambda's JSON log
/// lines carry it in `time` (`telemetry-schema-reference.html`).
pub fn iso8601(unix_millis: u64) -> String {
    let secs = unix_millis / 1000;
    let (y, mo, d) = civil_date(secs);
    let (h, mi, s) = time_of_day(secs);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        unix_millis % 1000
    )
}

/// `02/Dec/2026:15:04:05 +0000`: the Common Log Format time of a function URL event's
/// `requestContext.time` (`urls-invocation.html`, request payload).
pub fn clf(unix_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d) = civil_date(unix_secs);
    let (h, mi, s) = time_of_day(unix_secs);
    let month = MONTHS[(mo as usize).saturating_sub(1) % 12];
    format!("{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{s:02} +0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_798_761_599), (2026, 12, 31));
        assert_eq!(civil_date(1_798_761_600), (2027, 1, 1));
    }

    #[test]
    fn times_are_written_as_lambda_writes_them() {
        // 2026-12-02T15:04:05.123Z
        let ms = 1_796_223_845_123;
        assert_eq!(iso8601(ms), "2026-12-02T15:04:05.123Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(clf(ms / 1000), "02/Dec/2026:15:04:05 +0000");
        // The documentation's example: 1583348638 is 04/Mar/2020:19:03:58.
        assert_eq!(clf(1_583_348_638), "04/Mar/2020:19:03:58 +0000");
    }
}
