//! What the command line chooses: data size, systems, workloads, network.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context};
use serde::Serialize;

/// A byte count written as `1GiB`, `256MiB`, `64KiB` or plain bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .with_context(|| format!("size '{text}' does not start with a number"))?;
        let scale = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            _ => bail!("size '{text}': unknown unit '{unit}'; use KiB, MiB or GiB"),
        };
        Ok(Self(number * scale))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scale, unit) = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
            .into_iter()
            .find(|(scale, _)| self.0 >= *scale && self.0.is_multiple_of(*scale))
            .unwrap_or((1, "B"));
        write!(f, "{}{unit}", self.0 / scale)
    }
}

/// The systems the benchmark compares; strait is the reference of every ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    Strait,
    Mm2,
    Mm2Tuned,
    Mm1,
    Ceiling,
}

impl System {
    pub const ALL: [System; 5] = [
        System::Strait,
        System::Mm2,
        System::Mm2Tuned,
        System::Mm1,
        System::Ceiling,
    ];

    pub fn name(self) -> &'static str {
        match self {
            System::Strait => "strait",
            System::Mm2 => "mm2",
            System::Mm2Tuned => "mm2-tuned",
            System::Mm1 => "mm1",
            System::Ceiling => "ceiling",
        }
    }

    /// A short tag for topic and cluster-alias names (letters and digits only).
    pub fn tag(self) -> &'static str {
        match self {
            System::Strait => "strait",
            System::Mm2 => "mm2",
            System::Mm2Tuned => "mm2t",
            System::Mm1 => "mm1",
            System::Ceiling => "ceil",
        }
    }
}

impl FromStr for System {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        System::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .with_context(|| {
                format!(
                    "unknown system '{text}'; choose from {}",
                    System::ALL.map(System::name).join(",")
                )
            })
    }
}

pub fn parse_list<T: FromStr<Err = anyhow::Error>>(text: &str) -> anyhow::Result<Vec<T>> {
    let items = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(T::from_str)
        .collect::<anyhow::Result<Vec<T>>>()?;
    if items.is_empty() {
        bail!("'{text}' names nothing");
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_binary_units() {
        assert_eq!("1GiB".parse::<ByteSize>().unwrap(), ByteSize(1 << 30));
        assert_eq!("64MiB".parse::<ByteSize>().unwrap(), ByteSize(64 << 20));
        assert_eq!("3k".parse::<ByteSize>().unwrap(), ByteSize(3 << 10));
        assert_eq!("1000".parse::<ByteSize>().unwrap(), ByteSize(1000));
        assert!("1TB".parse::<ByteSize>().is_err());
        assert!("GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(256 << 20).to_string(), "256MiB");
        assert_eq!(ByteSize(1500).to_string(), "1500B");
    }

    #[test]
    fn systems_parse_by_name_and_reject_others() {
        let systems: Vec<System> = parse_list("strait, mm2-tuned,ceiling").unwrap();
        assert_eq!(systems, [System::Strait, System::Mm2Tuned, System::Ceiling]);
        let error = parse_list::<System>("strait,mm3").unwrap_err().to_string();
        assert!(
            error.contains("mm3") && error.contains("mm2-tuned"),
            "{error}"
        );
    }
}
