//! Kafka framing, free of I/O: a frame is a big-endian i32 size followed by that many bytes.
//! Requests are size + request header + body; responses are size + response header + body.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Length of the size prefix of every frame.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Read-ahead when no frame size is known yet; large frames reserve their exact size.
const READ_CHUNK: usize = 64 * 1024;

/// A frame announced a size over the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {size} bytes exceeds the {max}-byte limit")]
pub struct FrameTooLarge {
    pub size: usize,
    pub max: usize,
}

/// Splits a byte stream into frames.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// Takes the next whole frame (without its size prefix) off the front of `buf`.
    ///
    /// The frame is split from `buf` without copying, so slices of it (fetched records) share
    /// the read buffer's allocation. When the frame is incomplete, `buf` is grown to hold all of
    /// it so the socket reads land in one allocation.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameTooLarge> {
        if buf.len() < SIZE_PREFIX_LEN {
            buf.reserve(READ_CHUNK);
            return Ok(None);
        }
        // Read as unsigned: a negative i32 is a corrupt stream, and lands over any sane maximum.
        let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if size > self.max_frame {
            return Err(FrameTooLarge {
                size,
                max: self.max_frame,
            });
        }
        let total = SIZE_PREFIX_LEN + size;
        if buf.len() < total {
            buf.reserve(total.max(READ_CHUNK) - buf.len());
            return Ok(None);
        }
        buf.advance(SIZE_PREFIX_LEN);
        Ok(Some(buf.split_to(size).freeze()))
    }
}

/// The correlation id of a response frame: its first four bytes.
pub fn correlation_id(frame: &[u8]) -> Option<i32> {
    let head: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(head))
}

/// Writes a request header for `api` at `version` into `buf`.
pub fn put_request_header(
    buf: &mut BytesMut,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> anyhow::Result<()> {
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(buf, api.request_header_version(version))
}

/// Encodes a whole request frame: size prefix, request header, body.
pub fn encode_request<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &R,
) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(64 + body.compute_size(version)?);
    buf.put_i32(0);
    put_request_header(&mut buf, api, version, correlation_id, client_id)?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - SIZE_PREFIX_LEN)?;
    buf[..SIZE_PREFIX_LEN].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Strips the response header off a response frame, leaving the body (a slice, not a copy).
pub fn split_response_header(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
) -> anyhow::Result<(ResponseHeader, Bytes)> {
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
    Ok((header, frame))
}

/// Decodes a response body. Decoding from `Bytes` makes every byte-array field (the
/// `records` of a fetch) a slice of `body` rather than a copy.
pub fn decode_response_body<R: Decodable>(mut body: Bytes, version: i16) -> anyhow::Result<R> {
    R::decode(&mut body, version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        FetchResponse, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{MetadataRequest, TopicName};

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decoder_waits_for_whole_frames_and_splits_back_to_back_ones() {
        let decoder = FrameDecoder::new(1024);
        let mut stream = framed(b"first");
        stream.extend(framed(b"second frame"));
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        // Feed one byte at a time: every partial state must yield nothing.
        for byte in stream {
            buf.put_u8(byte);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"first"),
                Bytes::from_static(b"second frame")
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn decoder_rejects_oversized_and_negative_sizes() {
        let decoder = FrameDecoder::new(16);
        let mut big = BytesMut::from(&17i32.to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut big),
            Err(FrameTooLarge { size: 17, max: 16 })
        );
        let mut negative = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(decoder.decode(&mut negative).is_err());
    }

    #[test]
    fn decoded_frame_shares_the_read_buffer() {
        let decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&framed(b"abcdef")[..]);
        let start = buf.as_ptr() as usize;
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.as_ptr() as usize, start + SIZE_PREFIX_LEN);
    }

    #[test]
    fn correlation_id_is_the_first_four_bytes() {
        assert_eq!(correlation_id(&[0, 0, 1, 2, 9]), Some(258));
        assert_eq!(correlation_id(&[0xff, 0xff, 0xff, 0xfe]), Some(-2));
        assert_eq!(correlation_id(&[1, 2]), None);
    }

    #[test]
    fn request_frame_is_size_header_body() {
        let body = MetadataRequest::default().with_topics(None);
        for version in [4i16, 12] {
            let frame = encode_request(ApiKey::Metadata, version, 77, "strait", &body).unwrap();
            let mut rest = frame.clone();
            let size = rest.get_i32() as usize;
            assert_eq!(size, frame.len() - 4);
            let header =
                kafka_protocol::protocol::decode_request_header_from_buffer(&mut rest).unwrap();
            assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 77);
            assert_eq!(header.client_id.as_deref(), Some("strait"));
            let decoded = MetadataRequest::decode(&mut rest, version).unwrap();
            assert_eq!(decoded, body);
            assert!(rest.is_empty());
        }
    }

    /// Encodes a FetchResponse frame the way a broker would, decodes it back and checks that
    /// the records field points into the frame rather than into a copy.
    #[test]
    fn fetch_records_decode_as_slices_of_the_frame() {
        let records = Bytes::from_static(b"pretend these are record batches");
        for version in [4i16, 11, 12, 16] {
            let mut topic =
                FetchableTopicResponse::default().with_partitions(vec![PartitionData::default()
                    .with_partition_index(3)
                    .with_records(Some(records.clone()))]);
            if version >= 13 {
                topic.topic_id = uuid_from(7);
            } else {
                topic.topic = TopicName(StrBytes::from_static_str("t"));
            }
            let response = FetchResponse::default().with_responses(vec![topic]);
            let mut wire = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(5)
                .encode(&mut wire, ApiKey::Fetch.response_header_version(version))
                .unwrap();
            response.encode(&mut wire, version).unwrap();
            let frame = wire.freeze();
            let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();

            let (header, body) =
                split_response_header(frame.clone(), ApiKey::Fetch, version).unwrap();
            assert_eq!(header.correlation_id, 5);
            let decoded: FetchResponse = decode_response_body(body, version).unwrap();
            let got = decoded.responses[0].partitions[0].records.clone().unwrap();
            assert_eq!(got, records);
            assert!(
                frame_range.contains(&(got.as_ptr() as usize)),
                "v{version}: records were copied out of the frame"
            );
        }
    }

    fn uuid_from(n: u8) -> uuid::Uuid {
        uuid::Uuid::from_bytes([n; 16])
    }
}
