//! What a broker's per-partition error code means for replication. Pure.

use kafka_protocol::error::ResponseError;

/// How one partition's produce result is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProduceOutcome {
    /// Written (or written before: a duplicate of a batch the broker already has).
    Acked { base_offset: i64 },
    /// Not written; send again with the same sequence after a backoff and, when the
    /// leader may have moved, a metadata refresh.
    Retry {
        error: ResponseError,
        refresh_metadata: bool,
    },
    /// The broker lost or rejected this producer's identity or sequence state: start a
    /// new producer identity once every send has settled.
    ResetProducer { error: ResponseError },
    /// The partition cannot go on without an operator.
    Stop { error: ResponseError },
}

pub fn classify_produce(code: i16, base_offset: i64) -> ProduceOutcome {
    let Some(error) = ResponseError::try_from_code(code) else {
        return ProduceOutcome::Acked { base_offset };
    };
    match error {
        ResponseError::DuplicateSequenceNumber => ProduceOutcome::Acked { base_offset },
        ResponseError::NotLeaderOrFollower
        | ResponseError::LeaderNotAvailable
        | ResponseError::UnknownTopicOrPartition
        | ResponseError::FencedLeaderEpoch
        | ResponseError::UnknownLeaderEpoch
        | ResponseError::KafkaStorageError => ProduceOutcome::Retry {
            error,
            refresh_metadata: true,
        },
        ResponseError::OutOfOrderSequenceNumber
        | ResponseError::UnknownProducerId
        | ResponseError::InvalidProducerEpoch
        | ResponseError::ProducerFenced => ProduceOutcome::ResetProducer { error },
        other if other.is_retriable() => ProduceOutcome::Retry {
            error: other,
            refresh_metadata: false,
        },
        other => ProduceOutcome::Stop { error: other },
    }
}

/// How one partition's fetch error is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    Retry {
        error: ResponseError,
        refresh_metadata: bool,
    },
    /// The fetch position is outside the source log: look up its bounds.
    OutOfRange,
    Stop {
        error: ResponseError,
    },
}

pub fn classify_fetch_error(error: ResponseError) -> FetchOutcome {
    match error {
        ResponseError::OffsetOutOfRange => FetchOutcome::OutOfRange,
        ResponseError::NotLeaderOrFollower
        | ResponseError::LeaderNotAvailable
        | ResponseError::UnknownTopicOrPartition
        | ResponseError::UnknownTopicId
        | ResponseError::FencedLeaderEpoch
        | ResponseError::UnknownLeaderEpoch
        | ResponseError::OffsetNotAvailable
        | ResponseError::KafkaStorageError
        | ResponseError::InconsistentTopicId => FetchOutcome::Retry {
            error,
            refresh_metadata: true,
        },
        other if other.is_retriable() => FetchOutcome::Retry {
            error: other,
            refresh_metadata: false,
        },
        other => FetchOutcome::Stop { error: other },
    }
}

/// Advice shown with a stopped partition, so the operator knows what to change.
pub fn advice(error: ResponseError) -> &'static str {
    match error {
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
            "raise max.message.bytes on the target topic to at least the source's"
        }
        ResponseError::InvalidTimestamp => {
            "the target topic's message.timestamp.before.max.ms/after.max.ms rejects the source timestamps; widen them on the target topic"
        }
        ResponseError::TopicAuthorizationFailed | ResponseError::ClusterAuthorizationFailed => {
            "grant strait's principal the needed ACLs (Read/Describe on the source, Write/Describe/IdempotentWrite on the target)"
        }
        ResponseError::CorruptMessage | ResponseError::InvalidRecord => {
            "the target refused the batch; check the target broker's log for the reason"
        }
        _ => "see the broker's log for details",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_duplicates_are_acknowledgements() {
        assert_eq!(
            classify_produce(0, 7),
            ProduceOutcome::Acked { base_offset: 7 }
        );
        assert_eq!(
            classify_produce(ResponseError::DuplicateSequenceNumber.code(), 7),
            ProduceOutcome::Acked { base_offset: 7 }
        );
    }

    #[test]
    fn leader_moves_retry_after_a_metadata_refresh() {
        assert_eq!(
            classify_produce(ResponseError::NotLeaderOrFollower.code(), -1),
            ProduceOutcome::Retry {
                error: ResponseError::NotLeaderOrFollower,
                refresh_metadata: true
            }
        );
        assert_eq!(
            classify_produce(ResponseError::NotEnoughReplicas.code(), -1),
            ProduceOutcome::Retry {
                error: ResponseError::NotEnoughReplicas,
                refresh_metadata: false
            }
        );
    }

    #[test]
    fn lost_producer_state_resets_the_producer_and_bad_data_stops_the_partition() {
        assert_eq!(
            classify_produce(ResponseError::UnknownProducerId.code(), -1),
            ProduceOutcome::ResetProducer {
                error: ResponseError::UnknownProducerId
            }
        );
        assert_eq!(
            classify_produce(ResponseError::MessageTooLarge.code(), -1),
            ProduceOutcome::Stop {
                error: ResponseError::MessageTooLarge
            }
        );
        assert_eq!(
            classify_produce(ResponseError::TopicAuthorizationFailed.code(), -1),
            ProduceOutcome::Stop {
                error: ResponseError::TopicAuthorizationFailed
            }
        );
    }

    #[test]
    fn fetch_errors_are_sorted_into_retry_out_of_range_and_stop() {
        assert_eq!(
            classify_fetch_error(ResponseError::OffsetOutOfRange),
            FetchOutcome::OutOfRange
        );
        assert!(matches!(
            classify_fetch_error(ResponseError::NotLeaderOrFollower),
            FetchOutcome::Retry {
                refresh_metadata: true,
                ..
            }
        ));
        assert!(matches!(
            classify_fetch_error(ResponseError::TopicAuthorizationFailed),
            FetchOutcome::Stop { .. }
        ));
    }
}
