//! Snappy as Kafka's Java client frames it (snappy-java's SnappyOutputStream): a
//! 16-byte header, then blocks of `[u32 big-endian length][raw snappy]` each holding at
//! most 32 KiB of input. Like SnappyInputStream, the reader also takes plain raw snappy
//! (what librdkafka writes) and concatenated framed streams.

use std::io;

/// Magic (8 bytes), then version 1 and minimum compatible version 1 as big-endian i32.
const STREAM_HEADER: [u8; 16] = *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const MAGIC_LEN: usize = 8;
const BLOCK_INPUT_LEN: usize = 32 * 1024;

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

fn starts_with_magic(bytes: &[u8]) -> bool {
    bytes.len() >= STREAM_HEADER.len() && bytes[..MAGIC_LEN] == STREAM_HEADER[..MAGIC_LEN]
}

pub(crate) fn decompress(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut decoder = snap::raw::Decoder::new();
    if !starts_with_magic(input) {
        return decoder.decompress_vec(input).map_err(io::Error::other);
    }
    let mut output = Vec::new();
    let mut at = STREAM_HEADER.len();
    // snappy-java stops at fewer than 4 bytes left, so trailing bytes that short are ignored
    while input.len() - at >= 4 {
        if starts_with_magic(&input[at..]) {
            at += STREAM_HEADER.len();
            continue;
        }
        let len = u32::from_be_bytes(input[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 4;
        let block = input.get(at..at + len).ok_or_else(|| {
            invalid(format!(
                "snappy block of {len} bytes at byte {} runs past the end ({} bytes)",
                at - 4,
                input.len()
            ))
        })?;
        let start = output.len();
        let block_len = snap::raw::decompress_len(block).map_err(io::Error::other)?;
        output.resize(start + block_len, 0);
        decoder
            .decompress(block, &mut output[start..])
            .map_err(io::Error::other)?;
        at += len;
    }
    Ok(output)
}

pub(crate) fn compress(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = snap::raw::Encoder::new();
    let mut output = STREAM_HEADER.to_vec();
    for chunk in input.chunks(BLOCK_INPUT_LEN) {
        let block = encoder.compress_vec(chunk).map_err(io::Error::other)?;
        output.extend_from_slice(&(block.len() as u32).to_be_bytes());
        output.extend_from_slice(&block);
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[test]
    fn framed_round_trip_over_several_blocks() {
        let data = sample(100_000);
        let framed = compress(&data).unwrap();
        assert_eq!(&framed[..16], &STREAM_HEADER);
        assert_eq!(decompress(&framed).unwrap(), data);
    }

    #[test]
    fn reads_raw_snappy_without_framing() {
        let data = sample(5_000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(&raw).unwrap(), data);
    }

    #[test]
    fn reads_concatenated_framed_streams() {
        let mut framed = compress(b"first part ").unwrap();
        framed.extend_from_slice(&compress(b"second part").unwrap());
        assert_eq!(decompress(&framed).unwrap(), b"first part second part");
    }

    #[test]
    fn rejects_a_block_running_past_the_end() {
        let framed = compress(&sample(1000)).unwrap();
        let err = decompress(&framed[..framed.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");
    }
}
