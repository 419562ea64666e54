//! API version negotiation, free of I/O.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, VersionRange};

/// The version ranges a broker announced in its ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerVersions {
    ranges: HashMap<i16, VersionRange>,
}

impl BrokerVersions {
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let ranges = response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        Self { ranges }
    }

    pub fn range(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&(api as i16)).copied()
    }

    /// The highest version both sides speak, if any.
    pub fn negotiate(&self, api: ApiKey, ours: VersionRange) -> Option<i16> {
        let common = ours.intersect(&self.range(api)?);
        (!common.is_empty()).then_some(common.max)
    }
}

/// What came back for an ApiVersions request.
#[derive(Debug)]
pub enum ApiVersionsOutcome {
    Supported(ApiVersionsResponse),
    /// The broker does not speak the version we sent; it answered in v0 and says which
    /// ApiVersions versions it does speak (if it said).
    RetryWith(i16),
}

/// Decodes an ApiVersions response body sent for a request at `version`.
///
/// A broker that does not know the request version answers UNSUPPORTED_VERSION in the v0
/// layout whatever the request version was, so the error code is peeked before decoding.
pub fn decode_api_versions(body: Bytes, version: i16) -> anyhow::Result<ApiVersionsOutcome> {
    let error_code = body
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| anyhow::anyhow!("empty ApiVersions response"))?;
    if error_code == ResponseError::UnsupportedVersion.code() {
        let fallback = ApiVersionsResponse::decode(&mut body.clone(), 0)
            .ok()
            .and_then(|r| {
                BrokerVersions::from_response(&r)
                    .range(ApiKey::ApiVersions)
                    .map(|range| range.max.min(version - 1))
            })
            .unwrap_or(0);
        return Ok(ApiVersionsOutcome::RetryWith(fallback.max(0)));
    }
    let response = ApiVersionsResponse::decode(&mut body.clone(), version)?;
    Ok(ApiVersionsOutcome::Supported(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::protocol::Encodable;

    fn versions(entries: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            entries
                .iter()
                .map(|(api, min, max)| {
                    ApiVersion::default()
                        .with_api_key(*api as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
    }

    fn encoded(response: &ApiVersionsResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        response.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn negotiates_the_highest_common_version() {
        let broker = BrokerVersions::from_response(&versions(&[
            (ApiKey::Produce, 3, 9),
            (ApiKey::Fetch, 0, 20),
            (ApiKey::Metadata, 0, 3),
        ]));
        assert_eq!(
            broker.negotiate(ApiKey::Produce, VersionRange { min: 3, max: 13 }),
            Some(9)
        );
        assert_eq!(
            broker.negotiate(ApiKey::Fetch, VersionRange { min: 4, max: 18 }),
            Some(18)
        );
        assert_eq!(
            broker.negotiate(ApiKey::Metadata, VersionRange { min: 4, max: 13 }),
            None
        );
        assert_eq!(
            broker.negotiate(ApiKey::FindCoordinator, VersionRange { min: 0, max: 6 }),
            None
        );
    }

    #[test]
    fn supported_response_decodes_at_the_request_version() {
        let response = versions(&[(ApiKey::Produce, 3, 13)]);
        match decode_api_versions(encoded(&response, 3), 3).unwrap() {
            ApiVersionsOutcome::Supported(r) => assert_eq!(r.api_keys, response.api_keys),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unsupported_version_answer_in_v0_asks_for_a_lower_version() {
        let old_broker = versions(&[(ApiKey::ApiVersions, 0, 2)])
            .with_error_code(ResponseError::UnsupportedVersion.code());
        match decode_api_versions(encoded(&old_broker, 0), 3).unwrap() {
            ApiVersionsOutcome::RetryWith(v) => assert_eq!(v, 2),
            other => panic!("unexpected {other:?}"),
        }
        let silent_broker = ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code());
        match decode_api_versions(encoded(&silent_broker, 0), 3).unwrap() {
            ApiVersionsOutcome::RetryWith(v) => assert_eq!(v, 0),
            other => panic!("unexpected {other:?}"),
        }
    }
}
