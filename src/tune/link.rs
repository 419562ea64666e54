//! The link to fill: round-trip time and rate, as an operator writes them.

use std::time::Duration;

use super::error::TuneError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSpec {
    pub rtt: Duration,
    pub bits_per_second: u64,
}

impl LinkSpec {
    pub fn bytes_per_second(&self) -> f64 {
        self.bits_per_second as f64 / 8.0
    }

    /// Bytes that must be in flight, unacknowledged, to keep the link busy.
    pub fn bandwidth_delay_product(&self) -> u64 {
        (self.bytes_per_second() * self.rtt.as_secs_f64()).round() as u64
    }

    /// The throughput that `bytes` in flight per round trip allow, in bytes per second.
    pub fn rate_with_window(&self, bytes: u64) -> f64 {
        bytes as f64 / self.rtt.as_secs_f64()
    }
}

/// `100ms`, `0.3s`, `250us`.
pub fn parse_rtt(text: &str) -> Result<Duration, TuneError> {
    let invalid = |reason: &str| TuneError::Rtt {
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let (number, unit) = split_number(text.trim());
    let nanos_per_unit = match unit.to_ascii_lowercase().as_str() {
        "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "" => return Err(invalid("it has no unit")),
        _ => return Err(invalid("its unit is not s, ms or us")),
    };
    let value =
        parse_positive(number).ok_or_else(|| invalid("it does not start with a number above 0"))?;
    Ok(Duration::from_nanos((value * nanos_per_unit).round() as u64))
}

/// A rate in bits per second: `1gbit`, `500mbit`, `10gbit`.
pub fn parse_bandwidth(text: &str) -> Result<u64, TuneError> {
    let invalid = |reason: &str| TuneError::Bandwidth {
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let (number, unit) = split_number(text.trim());
    let bits_per_unit = match unit.to_ascii_lowercase().as_str() {
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        "bps" | "kbps" | "mbps" | "gbps" => {
            return Err(invalid(
                "bps means bits to some tools and bytes to others (tc)",
            ))
        }
        "" => return Err(invalid("it has no unit")),
        _ => return Err(invalid("its unit is not kbit, mbit, gbit or tbit")),
    };
    let value =
        parse_positive(number).ok_or_else(|| invalid("it does not start with a number above 0"))?;
    let bits = (value * bits_per_unit).round();
    if bits < 1.0 || bits > u64::MAX as f64 {
        return Err(invalid("it is out of range"));
    }
    Ok(bits as u64)
}

fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn parse_positive(number: &str) -> Option<f64> {
    number
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_delay_product_of_the_wan_matrix() {
        let link = LinkSpec {
            rtt: parse_rtt("100ms").unwrap(),
            bits_per_second: parse_bandwidth("1gbit").unwrap(),
        };
        assert_eq!(link.bandwidth_delay_product(), 12_500_000);
        let link = LinkSpec {
            rtt: parse_rtt("0.3s").unwrap(),
            ..link
        };
        assert_eq!(link.bandwidth_delay_product(), 37_500_000);
        assert_eq!(link.rate_with_window(3_000_000), 10_000_000.0);
    }

    #[test]
    fn rtt_units() {
        assert_eq!(parse_rtt("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_rtt("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(
            parse_rtt("100").unwrap_err().to_string(),
            "--rtt \"100\": it has no unit — write a round-trip time such as 100ms or 0.3s"
        );
        assert!(parse_rtt("0ms").is_err());
        assert!(parse_rtt("fast").is_err());
    }

    #[test]
    fn bandwidth_units() {
        assert_eq!(parse_bandwidth("10gbit").unwrap(), 10_000_000_000);
        assert_eq!(parse_bandwidth("2.5Gbit").unwrap(), 2_500_000_000);
        assert_eq!(parse_bandwidth("500mbit").unwrap(), 500_000_000);
        assert_eq!(
            parse_bandwidth("1gbps").unwrap_err().to_string(),
            "--bandwidth \"1gbps\": bps means bits to some tools and bytes to others (tc) — write bits per second such as 1gbit or 500mbit"
        );
        assert!(parse_bandwidth("1").is_err());
        assert!(parse_bandwidth("0gbit").is_err());
    }
}
