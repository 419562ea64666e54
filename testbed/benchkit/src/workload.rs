//! The workloads (how the source topic is written) and the record payloads.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Well batched: 256 KiB lz4 batches.
    W1,
    /// Small batches: 16 KiB, uncompressed.
    W2,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
        }
    }

    pub fn partitions(self) -> i32 {
        8
    }

    pub fn record_size(self) -> usize {
        1024
    }

    /// The producer's `batch.size` when the source topic is written.
    pub fn batch_size(self) -> usize {
        match self {
            Workload::W1 => 256 << 10,
            Workload::W2 => 16 << 10,
        }
    }

    /// `compression.type` of the producer that writes the source topic.
    pub fn compression(self) -> &'static str {
        match self {
            Workload::W1 => "lz4",
            Workload::W2 => "none",
        }
    }

    pub fn describe(self) -> String {
        format!(
            "{}: {} partitions, {} B records, {} KiB batches, compression {}",
            self.name().to_uppercase(),
            self.partitions(),
            self.record_size(),
            self.batch_size() >> 10,
            self.compression()
        )
    }

    /// Settings of the Java producer that writes like this workload (the fill, the
    /// ceiling's producer, and the tuned mirrors' producers).
    pub fn producer_settings(self) -> Vec<(&'static str, String)> {
        vec![
            ("batch.size", self.batch_size().to_string()),
            ("linger.ms", "100".to_string()),
            ("compression.type", self.compression().to_string()),
            ("buffer.memory", (64u64 << 20).to_string()),
            ("max.request.size", (4u64 << 20).to_string()),
            ("acks", "all".to_string()),
        ]
    }
}

impl FromStr for Workload {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "w1" => Ok(Workload::W1),
            "w2" => Ok(Workload::W2),
            _ => bail!("unknown workload '{text}'; choose w1 or w2"),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const DISTINCT_PAYLOADS: usize = 2000;

const WORDS: [&str; 64] = [
    "order",
    "created",
    "payment",
    "accepted",
    "shipment",
    "delayed",
    "customer",
    "account",
    "session",
    "started",
    "checkout",
    "cart",
    "item",
    "added",
    "removed",
    "price",
    "updated",
    "warehouse",
    "stock",
    "reserved",
    "invoice",
    "sent",
    "refund",
    "issued",
    "login",
    "failed",
    "retry",
    "timeout",
    "gateway",
    "region",
    "eu-west-1",
    "us-east-2",
    "mobile",
    "web",
    "api",
    "v2",
    "latency",
    "ok",
    "error",
    "warning",
    "cache",
    "miss",
    "hit",
    "database",
    "query",
    "index",
    "user",
    "profile",
    "email",
    "verified",
    "coupon",
    "applied",
    "discount",
    "total",
    "currency",
    "EUR",
    "USD",
    "country",
    "DE",
    "FR",
    "US",
    "device",
    "android",
    "ios",
];

/// Log-like JSON events of exactly `size` bytes: a few fields, random ids and a message of
/// common words, so lz4 finds about as much to compress as in application logs.
pub fn payloads(size: usize) -> Vec<Vec<u8>> {
    let mut random = XorShift(0x2545_F491_4F6C_DD1D);
    (0..DISTINCT_PAYLOADS)
        .map(|seq| {
            let mut line = format!(
                "{{\"seq\":{seq},\"host\":\"web-{:02}.{}\",\"user\":\"u{:08x}\",\"trace\":\"{:016x}{:016x}\",\"msg\":\"",
                random.below(32),
                WORDS[29 + random.below(2) as usize],
                random.next() as u32,
                random.next(),
                random.next(),
            );
            while line.len() < size {
                line.push_str(WORDS[random.below(WORDS.len() as u64) as usize]);
                line.push(' ');
            }
            line.truncate(size - 2);
            line.push_str("\"}");
            line.into_bytes()
        })
        .collect()
}

/// Writes the payloads one per line, for ProducerPerformance's `--payload-file`.
pub fn write_payload_file(path: &Path, payloads: &[Vec<u8>]) -> anyhow::Result<()> {
    let mut text = Vec::with_capacity(payloads.iter().map(|p| p.len() + 1).sum());
    for payload in payloads {
        text.extend_from_slice(payload);
        text.push(b'\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_record_size_and_no_line_breaks() {
        let payloads = payloads(1024);
        assert_eq!(payloads.len(), DISTINCT_PAYLOADS);
        assert!(payloads.iter().all(|p| p.len() == 1024));
        assert!(payloads.iter().all(|p| !p.contains(&b'\n')));
        assert_ne!(payloads[0], payloads[1]);
    }
}
