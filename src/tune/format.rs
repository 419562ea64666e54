//! Sizes and rates for people: kernel buffer sizes in binary units (they are powers of
//! two), link figures in decimal ones (as link rates are sold).

use super::link::LinkSpec;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `4 MiB`, `1.5 GiB`, `600 B`.
pub fn binary(bytes: u64) -> String {
    let (unit, name) = match bytes {
        b if b >= GIB => (GIB, "GiB"),
        b if b >= MIB => (MIB, "MiB"),
        b if b >= KIB => (KIB, "KiB"),
        _ => return format!("{bytes} B"),
    };
    if bytes % unit == 0 {
        format!("{} {name}", bytes / unit)
    } else {
        format!("{:.1} {name}", bytes as f64 / unit as f64)
    }
}

/// `12.5 MB`.
pub fn decimal(bytes: u64) -> String {
    scaled(bytes as f64, "B")
}

/// `41.9 MB/s (336 Mbit/s)`.
pub fn rate(bytes_per_second: f64) -> String {
    format!(
        "{}/s ({}/s)",
        scaled(bytes_per_second, "B"),
        scaled(bytes_per_second * 8.0, "bit")
    )
}

/// `34% of the link`.
pub fn percent_of_link(bytes_per_second: f64, link: &LinkSpec) -> String {
    format!(
        "{:.0}% of the link",
        100.0 * bytes_per_second / link.bytes_per_second()
    )
}

/// `1 Gbit/s`, `2.5 Gbit/s`.
pub fn link_rate(bits_per_second: u64) -> String {
    format!("{}/s", scaled(bits_per_second as f64, "bit"))
}

/// Three significant digits and an SI prefix.
fn scaled(value: f64, unit: &str) -> String {
    let (divisor, prefix) = match value {
        v if v >= 1e12 => (1e12, "T"),
        v if v >= 1e9 => (1e9, "G"),
        v if v >= 1e6 => (1e6, "M"),
        v if v >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let scaled = value / divisor;
    let digits = if scaled >= 100.0 || prefix.is_empty() {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    let number = format!("{scaled:.digits$}");
    // 1.00 reads better as 1.
    let number = if number.contains('.') {
        number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        number
    };
    format!("{number} {prefix}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kernel_sizes_in_binary_units() {
        assert_eq!(binary(4_194_304), "4 MiB");
        assert_eq!(binary(33_554_432), "32 MiB");
        assert_eq!(binary(102_400), "100 KiB");
        assert_eq!(binary(1_572_864), "1.5 MiB");
        assert_eq!(binary(600), "600 B");
    }

    #[test]
    fn link_figures_in_decimal_units() {
        assert_eq!(decimal(12_500_000), "12.5 MB");
        assert_eq!(decimal(37_500_000), "37.5 MB");
        assert_eq!(rate(41_943_040.0), "41.9 MB/s (336 Mbit/s)");
        assert_eq!(rate(125_000_000.0), "125 MB/s (1 Gbit/s)");
        assert_eq!(link_rate(1_000_000_000), "1 Gbit/s");
        assert_eq!(link_rate(2_500_000_000), "2.5 Gbit/s");
        let link = LinkSpec {
            rtt: Duration::from_millis(100),
            bits_per_second: 1_000_000_000,
        };
        assert_eq!(percent_of_link(41_943_040.0, &link), "34% of the link");
    }
}
