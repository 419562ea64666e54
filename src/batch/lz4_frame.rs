//! LZ4 frame format as Kafka writes it (Lz4BlockOutputStream): one frame of
//! independent blocks of at most 64 KiB, no checksums.
//!
//! The reader skips the frame descriptor checksum and the block and content
//! checksums. Kafka itself ignores the descriptor checksum for magic 0, whose writers
//! hashed the wrong bytes (KAFKA-3160), and the compressed bytes are already covered by
//! the batch CRC32C (v2) or the message CRC32 (v0/v1), so skipping costs no safety.

use std::io::{self, Write};

use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};

const FRAME_MAGIC: u32 = 0x184D_2204;
const UNCOMPRESSED_BLOCK_BIT: u32 = 0x8000_0000;

const FLG_VERSION_MASK: u8 = 0xC0;
const FLG_VERSION_1: u8 = 0x40;
const FLG_BLOCK_INDEPENDENCE: u8 = 0x20;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_DICTIONARY_ID: u8 = 0x01;

fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| invalid(format!("lz4 frame ends early at byte {}", self.at)))?;
        let bytes = &self.input[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u32_le(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

pub(crate) fn decompress(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut reader = Reader { input, at: 0 };
    if reader.u32_le()? != FRAME_MAGIC {
        return Err(invalid("not an lz4 frame (bad magic number)"));
    }
    let flg = reader.take(1)?[0];
    let bd = reader.take(1)?[0];
    if flg & FLG_VERSION_MASK != FLG_VERSION_1 {
        return Err(invalid(format!(
            "lz4 frame version bits {flg:#04x} are not 01"
        )));
    }
    if flg & FLG_BLOCK_INDEPENDENCE == 0 {
        return Err(invalid(
            "lz4 frame with dependent blocks, which Kafka does not support",
        ));
    }
    if flg & FLG_DICTIONARY_ID != 0 {
        return Err(invalid(
            "lz4 frame needs a dictionary, which Kafka never uses",
        ));
    }
    let max_block = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        other => return Err(invalid(format!("lz4 block size id {other} is invalid"))),
    };
    if flg & FLG_CONTENT_SIZE != 0 {
        reader.take(8)?;
    }
    reader.take(1)?; // descriptor checksum, see the module comment

    let mut output = Vec::new();
    loop {
        let header = reader.u32_le()?;
        if header == 0 {
            break;
        }
        let size = (header & !UNCOMPRESSED_BLOCK_BIT) as usize;
        if size > max_block {
            return Err(invalid(format!(
                "lz4 block of {size} bytes exceeds the frame's {max_block}-byte maximum"
            )));
        }
        let block = reader.take(size)?;
        if header & UNCOMPRESSED_BLOCK_BIT != 0 {
            output.extend_from_slice(block);
        } else {
            let start = output.len();
            output.resize(start + max_block, 0);
            let written = lz4_flex::block::decompress_into(block, &mut output[start..])
                .map_err(|e| invalid(format!("lz4 block: {e}")))?;
            output.truncate(start + written);
        }
        if flg & FLG_BLOCK_CHECKSUM != 0 {
            reader.take(4)?;
        }
    }
    if flg & FLG_CONTENT_CHECKSUM != 0 {
        reader.take(4)?;
    }
    Ok(output)
}

pub(crate) fn compress(input: &[u8]) -> io::Result<Vec<u8>> {
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent);
    let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
    encoder.write_all(input)?;
    encoder.finish().map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn round_trips_across_several_blocks() {
        let data = sample(200_000);
        let frame = compress(&data).unwrap();
        assert_eq!(&frame[..4], &FRAME_MAGIC.to_le_bytes());
        assert_eq!(decompress(&frame).unwrap(), data);
    }

    #[test]
    fn ignores_a_wrong_descriptor_checksum_as_magic_0_writers_produced() {
        let data = sample(1000);
        let mut frame = compress(&data).unwrap();
        // magic(4) FLG BD HC: the checksum is byte 6 when no content size is written
        assert_eq!(frame[4] & FLG_CONTENT_SIZE, 0);
        frame[6] ^= 0xFF;
        assert_eq!(decompress(&frame).unwrap(), data);
    }

    #[test]
    fn reads_uncompressed_blocks_and_optional_fields() {
        // FLG: version 1, independent blocks, block checksum, content size, content checksum
        let flg = FLG_VERSION_1
            | FLG_BLOCK_INDEPENDENCE
            | FLG_BLOCK_CHECKSUM
            | FLG_CONTENT_SIZE
            | FLG_CONTENT_CHECKSUM;
        let mut frame = FRAME_MAGIC.to_le_bytes().to_vec();
        frame.extend_from_slice(&[flg, 0x40]);
        frame.extend_from_slice(&5u64.to_le_bytes());
        frame.push(0); // descriptor checksum
        frame.extend_from_slice(&(5 | UNCOMPRESSED_BLOCK_BIT).to_le_bytes());
        frame.extend_from_slice(b"hello");
        frame.extend_from_slice(&[1, 2, 3, 4]); // block checksum
        frame.extend_from_slice(&0u32.to_le_bytes());
        frame.extend_from_slice(&[5, 6, 7, 8]); // content checksum
        assert_eq!(decompress(&frame).unwrap(), b"hello");
    }

    #[test]
    fn rejects_truncated_frames_and_dependent_blocks() {
        let frame = compress(&sample(1000)).unwrap();
        let err = decompress(&frame[..frame.len() - 3]).unwrap_err();
        assert!(err.to_string().contains("ends early"), "{err}");

        let mut dependent = frame.clone();
        dependent[4] &= !FLG_BLOCK_INDEPENDENCE;
        let err = decompress(&dependent).unwrap_err();
        assert!(err.to_string().contains("dependent"), "{err}");
    }
}
