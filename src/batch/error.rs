//! Errors of the batch layer. Each names the offset or byte position involved and
//! what the operator can do about it.

use super::header::Compression;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(
        "record batch at source offset {base_offset} is corrupt: {reason}; \
         the source log holds damaged data there: fetch again, and if it persists \
         skip past this offset or repair the source partition"
    )]
    CorruptBatch { base_offset: i64, reason: String },

    #[error(
        "CRC32C mismatch in record batch at source offset {base_offset}: header says \
         {expected:#010x}, bytes give {actual:#010x}; fetch again, and if it persists the \
         source log is corrupt at this offset"
    )]
    CrcMismatch {
        base_offset: i64,
        expected: u32,
        actual: u32,
    },

    #[error(
        "unsupported message format magic {magic} at byte {position} of the fetched records; \
         only magic 0, 1 and 2 exist: the data is not a Kafka log or is corrupt"
    )]
    UnsupportedMagic { position: usize, magic: i8 },

    #[error(
        "unknown compression codec id {codec} in record batch at source offset {base_offset}; \
         Kafka knows ids 0-4 (none, gzip, snappy, lz4, zstd): the batch is corrupt or from an \
         unsupported Kafka version"
    )]
    UnknownCodec { base_offset: i64, codec: u8 },

    #[error(
        "cannot decompress {codec} records of the batch at source offset {base_offset}: {source}; \
         the compressed payload is damaged"
    )]
    Decompress {
        codec: Compression,
        base_offset: i64,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot compress records with {codec}: {source}")]
    Compress {
        codec: Compression,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "record at source offset {offset} needs a batch of {size} bytes on its own, more than the \
         target allows ({max} bytes); raise max.message.bytes on the target topic (and \
         message.max.bytes / replica.fetch.max.bytes on the target brokers) to at least {size}"
    )]
    RecordTooLarge {
        offset: i64,
        size: usize,
        max: usize,
    },

    #[error("malformed fetched records at byte {position}: {reason}")]
    Malformed { position: usize, reason: String },
}
