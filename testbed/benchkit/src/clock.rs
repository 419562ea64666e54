//! Dates in UTC without a date library: the benchmark's time stamp, and the times
//! Kafka's perf tools print.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

/// "2026-11-22 04:10:35" in UTC, from the system clock.
pub fn utc_stamp() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Four base-36 characters from the clock, different for invocations more than a second
/// apart (within 19 days).
pub fn session_tag() -> String {
    let mut seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut tag = String::new();
    for _ in 0..4 {
        tag.push(char::from_digit((seconds % 36) as u32, 36).expect("a base-36 digit"));
        seconds /= 36;
    }
    tag
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "2026-11-22 04:10:35.376" (UTC) as a point in time.
pub fn parse_utc(text: &str) -> anyhow::Result<SystemTime> {
    let numbers: Vec<i64> = text
        .split(['-', ' ', ':', '.'])
        .map(|n| n.parse::<i64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("date '{text}'"))?;
    let [year, month, day, hour, minute, second, millis] = numbers[..] else {
        bail!("date '{text}' is not yyyy-MM-dd HH:mm:ss.SSS");
    };
    let days = days_from_civil(year, month, day);
    let millis = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    Ok(UNIX_EPOCH + Duration::from_millis(u64::try_from(millis)?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_to_unix_time() {
        let at = |text| {
            parse_utc(text)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        assert_eq!(at("1970-01-01 00:00:00.000"), 0);
        // `date -u -d '2024-02-29 13:45:07.250' +%s%3N`
        assert_eq!(at("2024-02-29 13:45:07.250"), 1_709_214_307_250);
        assert!(parse_utc("2024-02-29").is_err());
    }

    #[test]
    fn day_counts_convert_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // `date -u -d @1709214307 +%F` is 2024-02-29.
        assert_eq!(civil_from_days(1_709_214_307 / 86_400), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
