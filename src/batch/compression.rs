//! Decompression and compression of a batch's records blob, in the stream formats
//! Kafka's Java client reads and writes. Only the slow path uses this.

use std::io::{self, Read, Write};

use super::header::Compression;
use super::{lz4_frame, snappy_xerial};

/// Kafka's default levels (GzipConfig / ZstdConfig).
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

pub(crate) fn decompress(codec: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut output = Vec::new();
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut output)?;
            Ok(output)
        }
        Compression::Snappy => snappy_xerial::decompress(data),
        Compression::Lz4 => lz4_frame::decompress(data),
        Compression::Zstd => zstd::stream::decode_all(data),
    }
}

pub(crate) fn compress(codec: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
            encoder.write_all(data)?;
            encoder.finish()
        }
        Compression::Snappy => snappy_xerial::compress(data),
        Compression::Lz4 => lz4_frame::compress(data),
        Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips_and_compressed_ones_shrink_repetitive_data() {
        let data: Vec<u8> = b"strait mirrors kafka ".repeat(500);
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            if codec != Compression::None {
                assert!(packed.len() < data.len() / 4, "{codec}: {}", packed.len());
            }
            assert_eq!(decompress(codec, &packed).unwrap(), data, "{codec}");
        }
    }

    #[test]
    fn concatenated_gzip_members_and_zstd_frames_are_read_whole() {
        for codec in [Compression::Gzip, Compression::Zstd] {
            let mut joined = compress(codec, b"abc").unwrap();
            joined.extend_from_slice(&compress(codec, b"def").unwrap());
            assert_eq!(decompress(codec, &joined).unwrap(), b"abcdef", "{codec}");
        }
    }

    #[test]
    fn garbage_is_an_error_for_every_compressed_codec() {
        for codec in &ALL[1..] {
            assert!(decompress(*codec, b"\x00\x01garbage!").is_err(), "{codec}");
        }
    }
}
