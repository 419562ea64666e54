//! Typed values, parsed as Kafka's `ConfigDef` parses them (trimmed,
//! case-insensitive booleans) but stricter where Kafka would go on with a
//! value that cannot be meant. Each error is a reason followed by its fix.

use std::time::Duration;

/// `.properties` files have no end-of-line comments: `x = 10  # seconds`
/// makes the value `10  # seconds`. Returns the would-be comment.
pub(crate) fn trailing_comment(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    (1..bytes.len())
        .find(|&i| matches!(bytes[i], b'#' | b'!') && bytes[i - 1].is_ascii_whitespace())
        .map(|i| value[i..].trim_end())
}

/// The fix to offer for a value that does not parse: the comment advice
/// when the value carries a comment, `otherwise` when not.
pub(crate) fn fix_for(value: &str, otherwise: &str) -> String {
    match trailing_comment(value) {
        Some(comment) => format!(
            ".properties files have no end-of-line comments: put {comment:?} on a line of its own"
        ),
        None => otherwise.to_string(),
    }
}

pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!(
            "{trimmed:?} is not a boolean — {}",
            fix_for(value, "write true or false")
        ))
    }
}

/// Java's `Long.parseLong` of the trimmed value: an optional sign, digits.
pub(crate) fn parse_integer(value: &str) -> Result<i64, String> {
    let trimmed = value.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{trimmed:?} is not a whole number — {}",
            fix_for(value, "write digits only, e.g. 600")
        ));
    }
    trimmed
        .parse::<i64>()
        .map_err(|_| format!("{trimmed} is too large — write a smaller number"))
}

pub(crate) fn parse_in_range(value: &str, min: i64, max: i64, fix: &str) -> Result<i64, String> {
    let number = parse_integer(value)?;
    if number < min || number > max {
        return Err(format!("{number} is out of range — {fix}"));
    }
    Ok(number)
}

/// A period in whole seconds, at least one.
pub(crate) fn parse_seconds(value: &str) -> Result<Duration, String> {
    let seconds = parse_in_range(
        value,
        1,
        i64::from(u32::MAX),
        "write a number of seconds of at least 1 (turn the task off with its .enabled key instead of 0)",
    )?;
    Ok(Duration::from_secs(seconds as u64))
}

/// A period in milliseconds, at least one.
pub(crate) fn parse_millis(value: &str) -> Result<Duration, String> {
    let millis = parse_in_range(
        value,
        1,
        i64::from(u32::MAX),
        "write a number of milliseconds of at least 1",
    )?;
    Ok(Duration::from_millis(millis as u64))
}

/// A replication factor for a topic strait creates: -1 lets the broker pick
/// its `default.replication.factor` (Kafka 2.4 and later).
pub(crate) fn parse_replication_factor(value: &str) -> Result<i16, String> {
    let factor = parse_in_range(
        value,
        -1,
        i64::from(i16::MAX),
        "write a replication factor of at least 1, or -1 for the broker's default.replication.factor",
    )?;
    if factor == 0 {
        return Err(
            "0 is not a replication factor — write at least 1, or -1 for the broker's default.replication.factor"
                .to_string(),
        );
    }
    Ok(factor as i16)
}

/// A Kafka socket buffer size: -1 leaves it to the operating system (and its
/// auto-tuning, which long links need).
pub(crate) fn parse_socket_buffer(value: &str) -> Result<Option<u32>, String> {
    let bytes = parse_in_range(
        value,
        -1,
        i64::from(i32::MAX),
        "write a size in bytes, or -1 to let the operating system size the buffer",
    )?;
    match bytes {
        -1 => Ok(None),
        0 => Err("0 is not a buffer size — write a size in bytes, or -1 to let the operating system size the buffer".to_string()),
        positive => Ok(Some(positive as u32)),
    }
}

/// A TCP congestion control algorithm's name as Linux knows it (`bbr`, `cubic`): the
/// kernel takes up to 15 bytes; whether it has the algorithm is checked when strait
/// starts.
pub(crate) fn parse_congestion_control(value: &str) -> Result<String, String> {
    const FIX: &str = "write the name of one the kernel offers, e.g. bbr or cubic (the list: /proc/sys/net/ipv4/tcp_available_congestion_control)";
    let name = value.trim();
    let well_formed = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if well_formed {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{value:?} is not a congestion control name — {FIX}"
        ))
    }
}

/// Idle seconds before TCP keepalive probes start; 0 turns keepalive off.
pub(crate) fn parse_keepalive_seconds(value: &str) -> Result<Option<Duration>, String> {
    let seconds = parse_in_range(
        value,
        0,
        32_767,
        "write the idle seconds before the first probe (Linux takes 1 to 32767), or 0 to turn keepalive off",
    )?;
    Ok((seconds > 0).then(|| Duration::from_secs(seconds as u64)))
}

/// Brokers as `host:port`, comma-separated, as Kafka clients accept them
/// (a `SCHEME://` prefix is allowed and dropped; empty entries are skipped).
/// IPv6 addresses must be in brackets.
pub(crate) fn parse_bootstrap_servers(value: &str) -> Result<Vec<String>, String> {
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(
            "is empty — list the cluster's brokers as host:port, separated by commas".to_string(),
        );
    }
    let mut servers = Vec::new();
    let mut bad = Vec::new();
    for entry in entries {
        match parse_host_port(entry) {
            Some(server) => servers.push(server),
            None => bad.push(entry),
        }
    }
    match bad.as_slice() {
        [] => Ok(servers),
        [one] => Err(format!(
            "{one:?} is not host:port — {}",
            bootstrap_fix(one, value)
        )),
        many => Err(format!(
            "{} are not host:port — {}",
            many.iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            bootstrap_fix(many[0], value)
        )),
    }
}

fn bootstrap_fix(entry: &str, value: &str) -> String {
    if trailing_comment(value).is_some() {
        return fix_for(value, "");
    }
    if entry.split_whitespace().count() > 1 {
        return "separate brokers with commas, e.g. broker1:9092,broker2:9092".to_string();
    }
    if entry.matches(':').count() > 1 && !entry.contains('[') {
        return "write IPv6 addresses in brackets, e.g. [::1]:9092".to_string();
    }
    let host = entry.rsplit_once(':').map_or(entry, |(host, _)| host);
    let host = if host.is_empty() { "localhost" } else { host };
    format!("write it as host:port, e.g. {host}:9092")
}

fn parse_host_port(entry: &str) -> Option<String> {
    let address = match entry.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            rest
        }
        Some(_) => return None,
        None => entry,
    };
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (inner, rest) = bracketed.split_once(']')?;
        let port = rest.strip_prefix(':')?;
        let valid_inner = !inner.is_empty()
            && inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.' || b == b'%');
        if !valid_inner {
            return None;
        }
        (format!("[{inner}]"), port)
    } else {
        let (host, port) = address.rsplit_once(':')?;
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid_host {
            return None;
        }
        (host.to_string(), port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match port.parse::<u32>() {
        Ok(number) if (1..=65535).contains(&number) => Some(format!("{host}:{number}")),
        _ => None,
    }
}

/// Where a flow starts reading a partition it has no progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    /// The first record at or after this time, in milliseconds since the
    /// Unix epoch (Kafka's ListOffsets by timestamp).
    Timestamp(i64),
}

pub(crate) fn parse_start_position(value: &str) -> Result<StartPosition, String> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("earliest") {
        return Ok(StartPosition::Earliest);
    }
    if trimmed.eq_ignore_ascii_case("latest") {
        return Ok(StartPosition::Latest);
    }
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<i64>()
            .map(StartPosition::Timestamp)
            .map_err(|_| format!("{trimmed} is too large for a timestamp in milliseconds"));
    }
    parse_rfc3339_millis(trimmed)
        .map(StartPosition::Timestamp)
        .ok_or_else(|| {
            format!(
                "{trimmed:?} is not a start position — {}",
                fix_for(
                    value,
                    "write earliest, latest, milliseconds since the epoch, or a UTC time like 2024-05-01T12:00:00Z"
                )
            )
        })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to milliseconds since the epoch.
fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't')
    {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = &rest[1..];
            if offset.len() != 5 || offset.as_bytes()[2] != b':' {
                return None;
            }
            let hours: i64 = offset[..2].parse().ok()?;
            let minutes: i64 = offset[3..].parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
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
    fn congestion_control_names_are_checked_for_form() {
        assert_eq!(parse_congestion_control(" bbr ").unwrap(), "bbr");
        assert_eq!(parse_congestion_control("cubic").unwrap(), "cubic");
        for bad in ["", "bbr cubic", "a-name-longer-than-15", "bbr;"] {
            let error = parse_congestion_control(bad).unwrap_err();
            assert!(
                error.contains("tcp_available_congestion_control"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn keepalive_takes_seconds_and_zero_turns_it_off() {
        assert_eq!(
            parse_keepalive_seconds("30").unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_keepalive_seconds("0").unwrap(), None);
        let error = parse_keepalive_seconds("40000").unwrap_err();
        assert!(error.contains("1 to 32767"), "{error}");
        assert!(parse_keepalive_seconds("soon").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool(" TRUE "), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        let error = parse_bool("yes").unwrap_err();
        assert_eq!(error, "\"yes\" is not a boolean — write true or false");
    }

    #[test]
    fn integers_follow_java() {
        assert_eq!(parse_integer(" 42 "), Ok(42));
        assert_eq!(parse_integer("+7"), Ok(7));
        assert_eq!(parse_integer("-1"), Ok(-1));
        for bad in ["", "1.5", "1e3", "0x10", "ten", "- 1"] {
            assert!(parse_integer(bad).is_err(), "{bad:?}");
        }
        assert!(parse_integer("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn end_of_line_comments_are_explained() {
        assert_eq!(trailing_comment("10  # seconds"), Some("# seconds"));
        assert_eq!(trailing_comment("a#b"), None);
        assert_eq!(trailing_comment("#start"), None);
        let error = parse_integer("10  # seconds").unwrap_err();
        assert_eq!(
            error,
            "\"10  # seconds\" is not a whole number — .properties files have no end-of-line comments: put \"# seconds\" on a line of its own"
        );
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(parse_seconds("600"), Ok(Duration::from_secs(600)));
        assert!(parse_seconds("0").unwrap_err().contains(".enabled"));
        assert!(parse_seconds("-5").unwrap_err().contains("out of range"));
    }

    #[test]
    fn replication_factors() {
        assert_eq!(parse_replication_factor("3"), Ok(3));
        assert_eq!(parse_replication_factor("-1"), Ok(-1));
        assert!(parse_replication_factor("0").is_err());
        assert!(parse_replication_factor("-2").is_err());
        assert!(parse_replication_factor("40000").is_err());
    }

    #[test]
    fn socket_buffers() {
        assert_eq!(parse_socket_buffer("-1"), Ok(None));
        assert_eq!(parse_socket_buffer("1048576"), Ok(Some(1_048_576)));
        assert!(parse_socket_buffer("0").is_err());
        assert!(parse_socket_buffer("-2").is_err());
    }

    #[test]
    fn bootstrap_servers_accept_what_kafka_clients_accept() {
        assert_eq!(
            parse_bootstrap_servers("broker1:9092, broker-2.example.com:9093,"),
            Ok(vec![
                "broker1:9092".to_string(),
                "broker-2.example.com:9093".to_string()
            ])
        );
        assert_eq!(
            parse_bootstrap_servers("SASL_SSL://b1:9094,[::1]:9092,10.0.0.1:9092"),
            Ok(vec![
                "b1:9094".to_string(),
                "[::1]:9092".to_string(),
                "10.0.0.1:9092".to_string()
            ])
        );
    }

    #[test]
    fn bootstrap_servers_errors_name_the_entries_and_the_fix() {
        let cases = [
            ("localhost", "\"localhost\" is not host:port — write it as host:port, e.g. localhost:9092"),
            ("b1:0", "\"b1:0\" is not host:port — write it as host:port, e.g. b1:9092"),
            ("b1:65536", "\"b1:65536\" is not host:port — write it as host:port, e.g. b1:9092"),
            ("b1:port", "\"b1:port\" is not host:port — write it as host:port, e.g. b1:9092"),
            (":9092", "\":9092\" is not host:port — write it as host:port, e.g. localhost:9092"),
            ("::1:9092", "\"::1:9092\" is not host:port — write IPv6 addresses in brackets, e.g. [::1]:9092"),
            ("b1:9092 b2:9092", "\"b1:9092 b2:9092\" is not host:port — separate brokers with commas, e.g. broker1:9092,broker2:9092"),
            ("a, b:1, c", "\"a\", \"c\" are not host:port — write it as host:port, e.g. a:9092"),
            (" , ", "is empty — list the cluster's brokers as host:port, separated by commas"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_bootstrap_servers(value).unwrap_err(),
                expected,
                "{value:?}"
            );
        }
        let commented = parse_bootstrap_servers("b1:9092  # primary").unwrap_err();
        assert!(commented.contains("no end-of-line comments"), "{commented}");
    }

    #[test]
    fn start_positions() {
        assert_eq!(
            parse_start_position("earliest"),
            Ok(StartPosition::Earliest)
        );
        assert_eq!(parse_start_position(" Latest "), Ok(StartPosition::Latest));
        assert_eq!(
            parse_start_position("1714564800000"),
            Ok(StartPosition::Timestamp(1_714_564_800_000))
        );
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01T12:00:00.5Z", 1_714_564_800_500),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("1969-12-31T23:59:59Z", -1000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_start_position(text),
                Ok(StartPosition::Timestamp(millis)),
                "{text}"
            );
        }
        for bad in [
            "yesterday",
            "2023-02-29T00:00:00Z",
            "2024-05-01 12:00:00",
            "2024-05-01T25:00:00Z",
        ] {
            assert!(parse_start_position(bad).is_err(), "{bad}");
        }
    }
}
