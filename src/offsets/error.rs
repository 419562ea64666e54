//! Errors of the offsets layer. Each names the offsets or bytes involved and what to
//! do about them.

use std::str::Utf8Error;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetMapError {
    #[error("offset {offset} is negative; Kafka offsets start at 0")]
    NegativeOffset { offset: i64 },

    #[error(
        "cannot map {records} records from source offset {source_offset} to target offset \
         {target_offset}: a run needs at least one record and non-negative offsets that fit \
         an i64; the acknowledged batch was reported wrongly"
    )]
    InvalidRun {
        source_offset: i64,
        target_offset: i64,
        records: i64,
    },

    #[error(
        "source offset {offset} at index {index} of a rebuilt batch does not follow \
         {previous}: a batch's records have increasing offsets"
    )]
    NotIncreasing {
        index: usize,
        previous: i64,
        offset: i64,
    },

    #[error("dropped source offsets {from}..{to} are not a range of non-negative offsets")]
    InvalidGap { from: i64, to: i64 },

    #[error(
        "source offset {source_offset} was written at target offset {target_offset}, below \
         target offset {target_end} that the offset map already holds: the target partition \
         was truncated or recreated; start a new offset map for it"
    )]
    TargetWentBack {
        source_offset: i64,
        target_offset: i64,
        target_end: i64,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetMapDecodeError {
    #[error("stored offset map is empty: no format version byte")]
    Empty,

    #[error(
        "stored offset map has format version {version}; this strait reads version 1: \
         it was written by a newer strait, upgrade this one or drop the stored map"
    )]
    UnsupportedVersion { version: u8 },

    #[error("stored offset map is cut short in {field}; drop the stored map")]
    Truncated { field: &'static str },

    #[error("stored offset map has a {field} out of range; drop the stored map")]
    OutOfRange { field: &'static str },

    #[error("stored offset map has {count} bytes after its end; drop the stored map")]
    TrailingBytes { count: usize },
}

/// A record of MM2's internal topics that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Mm2RecordError {
    #[error("{record} record is cut short in its {field}")]
    Truncated {
        record: &'static str,
        field: &'static str,
    },

    #[error("{record} record's {field} has a negative length {length}")]
    NegativeLength {
        record: &'static str,
        field: &'static str,
        length: i16,
    },

    #[error("{record} record's {field} is not UTF-8")]
    InvalidUtf8 {
        record: &'static str,
        field: &'static str,
        #[source]
        source: Utf8Error,
    },

    #[error(
        "{record} record's {field} is {length} bytes long; MM2's format allows 32767 \
         (shorten the name)"
    )]
    StringTooLong {
        record: &'static str,
        field: &'static str,
        length: usize,
    },

    #[error(
        "{record} record has version {version}; MM2 writes version 0 and this strait reads \
         only that"
    )]
    UnsupportedVersion { record: &'static str, version: i16 },

    #[error("{record} record's {part} has {count} bytes after its last field")]
    TrailingBytes {
        record: &'static str,
        part: &'static str,
        count: usize,
    },
}

/// A record of MM2's Kafka Connect offsets topic that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConnectOffsetError {
    #[error("MM2 offsets record's {part} is not JSON: {source}")]
    Json {
        part: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "MM2 offsets record's {part} is not what Kafka Connect writes ({expected}); is the \
         topic really MM2's offset.storage.topic?"
    )]
    Shape {
        part: &'static str,
        expected: &'static str,
    },
}
