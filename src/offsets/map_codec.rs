//! The stored form of an [`OffsetMap`], to keep it in a Kafka topic. Pure.
//!
//! Version 1, all numbers unsigned LEB128 varints (at most 10 bytes, values up to
//! i64::MAX), each offset stored as a distance from the one before it so that a
//! segment usually takes 3 to 6 bytes:
//!
//! ```text
//! u8       version = 1
//! varint   start                 lowest source offset the map answers for
//! varint   n                     segments
//! n times:
//!   varint dropped               source offsets dropped before the run's first record
//!   varint target step           first segment: the run's target offset; later ones:
//!                                distance from the previous run's target end
//!   varint records               >= 1
//! varint   trailing              source offsets dropped after the last run (or after
//!                                start when n = 0)
//! ```
//!
//! Segments are contiguous on the source, so a segment's first source offset is the
//! previous run's end (the first one's is `start`) and is not stored.

use std::collections::VecDeque;

use super::error::OffsetMapDecodeError;
use super::map::{OffsetMap, Run, Segment};

const VERSION: u8 = 1;

impl OffsetMap {
    pub fn encode(&self) -> Vec<u8> {
        let segments = self.segment_list();
        let mut out = Vec::with_capacity(12 + segments.len() * 6);
        out.push(VERSION);
        put_varint(&mut out, self.start());
        put_varint(&mut out, segments.len() as i64);
        let mut source_end = self.start();
        let mut target_end = 0;
        for segment in segments {
            let run = segment.run;
            put_varint(&mut out, run.source - source_end);
            put_varint(&mut out, run.target - target_end);
            put_varint(&mut out, run.records);
            source_end = run.source_end();
            target_end = run.target_end();
        }
        put_varint(&mut out, self.end() - source_end);
        out
    }

    /// Reads a stored map, keeping its newest `max_segments` segments.
    pub fn decode(bytes: &[u8], max_segments: usize) -> Result<Self, OffsetMapDecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(OffsetMapDecodeError::Empty)?;
        if version != VERSION {
            return Err(OffsetMapDecodeError::UnsupportedVersion { version });
        }
        let mut reader = Reader { bytes: rest };
        let start = reader.varint("start")?;
        let count = reader.varint("segment count")?;
        // Every segment takes at least 3 bytes: a count beyond that is corrupt, and
        // is not allowed to reserve memory.
        if count > reader.bytes.len() as i64 / 3 {
            return Err(OffsetMapDecodeError::Truncated { field: "segments" });
        }
        let mut segments = VecDeque::with_capacity(count as usize);
        let mut source_end = start;
        let mut target_end = 0i64;
        for _ in 0..count {
            let dropped = reader.varint("dropped offsets")?;
            let target_step = reader.varint("target step")?;
            let records = reader.varint("records")?;
            let source = add(source_end, dropped, "source offset")?;
            let target = add(target_end, target_step, "target offset")?;
            let run = Run::new(source, target, records)
                .map_err(|_| OffsetMapDecodeError::OutOfRange { field: "run" })?;
            segments.push_back(Segment {
                covers_from: source_end,
                run,
            });
            source_end = run.source_end();
            target_end = run.target_end();
        }
        let end = add(source_end, reader.varint("trailing offsets")?, "end")?;
        if !reader.bytes.is_empty() {
            return Err(OffsetMapDecodeError::TrailingBytes {
                count: reader.bytes.len(),
            });
        }
        Ok(OffsetMap::from_parts(segments, start, end, max_segments))
    }
}

fn add(base: i64, step: i64, field: &'static str) -> Result<i64, OffsetMapDecodeError> {
    base.checked_add(step)
        .ok_or(OffsetMapDecodeError::OutOfRange { field })
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    debug_assert!(value >= 0, "the map only stores non-negative distances");
    let mut rest = value as u64;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self, field: &'static str) -> Result<i64, OffsetMapDecodeError> {
        let mut value = 0u64;
        for (index, &byte) in self.bytes.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            let shift = 7 * index as u32;
            if shift == 63 && bits > 1 {
                return Err(OffsetMapDecodeError::OutOfRange { field });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[index + 1..];
                return i64::try_from(value)
                    .map_err(|_| OffsetMapDecodeError::OutOfRange { field });
            }
        }
        if self.bytes.len() >= 10 {
            Err(OffsetMapDecodeError::OutOfRange { field })
        } else {
            Err(OffsetMapDecodeError::Truncated { field })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::map::{Translation, DEFAULT_MAX_SEGMENTS};

    fn sample() -> OffsetMap {
        let mut map = OffsetMap::new(1000, DEFAULT_MAX_SEGMENTS).unwrap();
        map.record_gap(1000, 1002).unwrap();
        map.record_batch(1002, 70_000, 300).unwrap();
        map.record_gap(1302, 1303).unwrap();
        map.record_sparse(&[1303, 1310, 1311], 70_301).unwrap();
        map.record_gap(1312, 1320).unwrap();
        map
    }

    #[test]
    fn the_stored_form_is_the_documented_layout() {
        let bytes = sample().encode();
        let expected = [
            1, // version
            0xe8, 0x07, // start 1000
            3,    // segments
            2, 0xf0, 0xa2, 0x04, 0xac, 0x02, // dropped 2, target 70000, 300 records
            1, 1, 1, // 1303 after 1 dropped, target 70301 (1 after 70300), 1 record
            6, 0, 2, // 1310 after 6 dropped, target 70302, 2 records
            8, // 1312..1320 dropped at the end
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_map_reads_back_as_it_was() {
        let map = sample();
        let decoded = OffsetMap::decode(&map.encode(), DEFAULT_MAX_SEGMENTS).unwrap();
        assert_eq!(decoded, map);
        assert_eq!(decoded.translate(1305), Translation::Exact(70_302));
        assert_eq!(decoded.translate(1320), Translation::Exact(70_304));

        let empty = OffsetMap::new(42, 8).unwrap();
        assert_eq!(OffsetMap::decode(&empty.encode(), 8).unwrap(), empty);
    }

    #[test]
    fn large_offsets_survive_the_round_trip() {
        let mut map = OffsetMap::new(i64::MAX - 100, 4).unwrap();
        map.record_batch(i64::MAX - 50, i64::MAX - 10, 10).unwrap();
        let decoded = OffsetMap::decode(&map.encode(), 4).unwrap();
        assert_eq!(decoded, map);
        assert_eq!(
            decoded.translate(i64::MAX - 45),
            Translation::Exact(i64::MAX - 5)
        );
    }

    #[test]
    fn reading_with_a_smaller_bound_keeps_the_newest_segments() {
        let map = sample();
        let decoded = OffsetMap::decode(&map.encode(), 1).unwrap();
        assert_eq!(decoded.segment_count(), 1);
        assert_eq!(decoded.start(), 1304);
        assert_eq!(
            decoded.translate(1303),
            Translation::BeforeMap { start: 1304 }
        );
        assert_eq!(decoded.translate(1304), Translation::Exact(70_302));
        assert_eq!(decoded.end(), 1320);
    }

    #[test]
    fn damaged_bytes_are_refused() {
        let bytes = sample().encode();
        assert_eq!(OffsetMap::decode(&[], 8), Err(OffsetMapDecodeError::Empty));
        assert_eq!(
            OffsetMap::decode(&[2, 0, 0, 0], 8),
            Err(OffsetMapDecodeError::UnsupportedVersion { version: 2 })
        );
        for cut in 1..bytes.len() {
            assert!(
                OffsetMap::decode(&bytes[..cut], 8).is_err(),
                "cut at {cut} was accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            OffsetMap::decode(&longer, 8),
            Err(OffsetMapDecodeError::TrailingBytes { count: 1 })
        );
        // A run of zero records.
        assert_eq!(
            OffsetMap::decode(&[1, 0, 1, 0, 0, 0, 0], 8),
            Err(OffsetMapDecodeError::OutOfRange { field: "run" })
        );
        // A start of 2^63, past i64::MAX.
        let too_big = [
            1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0,
        ];
        assert_eq!(
            OffsetMap::decode(&too_big, 8),
            Err(OffsetMapDecodeError::OutOfRange { field: "start" })
        );
        // A segment count far beyond the bytes that follow.
        assert_eq!(
            OffsetMap::decode(&[1, 0, 0xff, 0xff, 0x03, 0], 8),
            Err(OffsetMapDecodeError::Truncated { field: "segments" })
        );
    }
}
