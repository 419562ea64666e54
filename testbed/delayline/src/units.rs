//! Values as an operator writes them: `150ms`, `1gbit`, `0.1%`, `10.77.1.1/24`.

use std::net::Ipv4Addr;
use std::time::Duration;

/// `150ms`, `0.3s`, `500us`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, unit) = split_number(text);
    let scale_ns = match unit.to_ascii_lowercase().as_str() {
        "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "ns" => 1.0,
        _ => {
            return Err(format!(
                "{text:?} is not a duration — write e.g. 150ms, 0.3s or 500us"
            ))
        }
    };
    let value = parse_non_negative(number, text)?;
    Ok(Duration::from_nanos((value * scale_ns).round() as u64))
}

/// A link rate in bits per second, tc's way: `1gbit`, `500mbit`, `100kbit`.
/// `0` or `unlimited` means no rate limit.
pub fn parse_rate(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text == "0" || text.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (number, unit) = split_number(text);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "bit" => 1e0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        "bps" | "kbps" | "mbps" | "gbps" => {
            return Err(format!(
                "{text:?} is ambiguous (tc reads bps as bytes per second) — write bits per second, e.g. 1gbit or 500mbit"
            ))
        }
        _ => return Err(format!("{text:?} is not a rate — write e.g. 1gbit, 500mbit or unlimited")),
    };
    let bits = (parse_non_negative(number, text)? * scale).round() as u64;
    if bits == 0 {
        return Err(format!(
            "{text:?} rounds to 0 bit/s — write unlimited for no limit"
        ));
    }
    Ok(Some(bits))
}

/// A probability written as a percentage (`0.1%`) or a fraction (`0.001`).
pub fn parse_loss(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let probability = match text.strip_suffix('%') {
        Some(percent) => parse_non_negative(percent, text)? / 100.0,
        None => parse_non_negative(text, text)?,
    };
    if probability >= 1.0 {
        return Err(format!(
            "{text:?} would drop every packet — write less than 100%"
        ));
    }
    Ok(probability)
}

/// An IPv4 interface address with its prefix length: `10.77.1.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let fix = "write an IPv4 address with its prefix length, e.g. 10.77.1.1/24";
        let (address, prefix) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{text:?} has no prefix length — {fix}"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IPv4 address — {fix}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=30).contains(p))
            .ok_or_else(|| format!("{text:?}: the prefix length must be 1 to 30 — {fix}"))?;
        Ok(Cidr { address, prefix })
    }

    /// The network this address belongs to, e.g. `10.77.1.0/24`.
    pub fn network(&self) -> String {
        let mask = u32::MAX << (32 - u32::from(self.prefix));
        let network = Ipv4Addr::from(u32::from(self.address) & mask);
        format!("{network}/{}", self.prefix)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        let prefix = self.prefix.min(other.prefix);
        let mask = u32::MAX << (32 - u32::from(prefix));
        u32::from(self.address) & mask == u32::from(other.address) & mask
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn parse_non_negative(number: &str, whole: &str) -> Result<f64, String> {
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{whole:?} does not start with a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("0.3s"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("150").unwrap_err().contains("e.g. 150ms"));
        assert!(parse_duration("-1ms").is_err());
    }

    #[test]
    fn rates_in_bits_per_second() {
        assert_eq!(parse_rate("1gbit"), Ok(Some(1_000_000_000)));
        assert_eq!(parse_rate("1.5Gbit"), Ok(Some(1_500_000_000)));
        assert_eq!(parse_rate("500mbit"), Ok(Some(500_000_000)));
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert_eq!(parse_rate("0"), Ok(None));
        assert!(parse_rate("1gbps").unwrap_err().contains("ambiguous"));
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn loss_as_percentage_or_fraction() {
        assert_eq!(parse_loss("0.1%"), Ok(0.001));
        assert_eq!(parse_loss("0.001"), Ok(0.001));
        assert_eq!(parse_loss("0"), Ok(0.0));
        assert!(parse_loss("100%").is_err());
        assert!(parse_loss("x%").is_err());
    }

    #[test]
    fn cidr_gives_its_network() {
        let cidr = Cidr::parse("10.77.1.1/24").unwrap();
        assert_eq!(cidr.network(), "10.77.1.0/24");
        assert_eq!(cidr.to_string(), "10.77.1.1/24");
        assert!(cidr.overlaps(&Cidr::parse("10.77.1.9/24").unwrap()));
        assert!(!cidr.overlaps(&Cidr::parse("10.77.2.1/24").unwrap()));
        assert!(Cidr::parse("10.77.1.1").is_err());
        assert!(Cidr::parse("10.77.1.1/32").is_err());
    }
}
