//! Transaction markers: the key of a control batch's record is
//! `version: i16, type: i16` (Kafka's ControlRecordType).

use super::error::BatchError;
use super::header::{read_i16, RecordBatch};
use super::records::decode_records;

const CONTROL_KEY_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMarker {
    Abort,
    Commit,
    /// Another control type (KRaft metadata markers, or one newer than this code).
    Other(i16),
}

/// The marker a control batch carries, from its first record as Kafka's consumer reads
/// it; `None` for a data batch or a control batch without records. The broker writes
/// markers uncompressed, but a compressed one is read too.
pub fn control_marker(batch: &RecordBatch) -> Result<Option<ControlMarker>, BatchError> {
    if !batch.is_control() || batch.is_empty() {
        return Ok(None);
    }
    let corrupt = |reason: String| BatchError::CorruptBatch {
        base_offset: batch.base_offset(),
        reason,
    };
    let records = decode_records(batch)?;
    let Some(first) = records.first() else {
        return Ok(None);
    };
    let key = first
        .key
        .as_ref()
        .filter(|key| key.len() >= CONTROL_KEY_LEN)
        .ok_or_else(|| corrupt("control record key is shorter than 4 bytes".into()))?;
    let version = read_i16(key, 0);
    if version < 0 {
        return Err(corrupt(format!(
            "control record key version {version} is negative"
        )));
    }
    Ok(Some(match read_i16(key, 2) {
        0 => ControlMarker::Abort,
        1 => ControlMarker::Commit,
        other => ControlMarker::Other(other),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::header::Compression;
    use crate::batch::test_support::{kp_batch, kp_record, marker_batch, txn_batch};
    use kafka_protocol::records::Record as KpRecord;

    #[test]
    fn reads_abort_commit_and_other_markers() {
        assert_eq!(
            control_marker(&marker_batch(3, 10, 0)).unwrap(),
            Some(ControlMarker::Abort)
        );
        assert_eq!(
            control_marker(&marker_batch(3, 10, 1)).unwrap(),
            Some(ControlMarker::Commit)
        );
        assert_eq!(
            control_marker(&marker_batch(3, 10, 2)).unwrap(),
            Some(ControlMarker::Other(2))
        );
    }

    #[test]
    fn a_data_batch_has_no_marker() {
        assert_eq!(control_marker(&txn_batch(3, 10)).unwrap(), None);
    }

    #[test]
    fn a_compressed_marker_is_read_too() {
        let record = KpRecord {
            control: true,
            transactional: true,
            producer_id: 9,
            producer_epoch: 0,
            sequence: 0,
            ..kp_record(4, 1, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 1]))
        };
        let batch = RecordBatch::new(kp_batch(&[record], Compression::Gzip)).unwrap();
        assert_eq!(control_marker(&batch).unwrap(), Some(ControlMarker::Commit));
    }

    #[test]
    fn a_short_key_or_negative_version_is_corrupt() {
        for key in [&[0u8, 0, 0][..], &[0xFF, 0xFF, 0, 0][..]] {
            let record = KpRecord {
                control: true,
                producer_id: 9,
                producer_epoch: 0,
                sequence: 0,
                ..kp_record(4, 1, Some(key), None)
            };
            let batch = RecordBatch::new(kp_batch(&[record], Compression::None)).unwrap();
            let err = control_marker(&batch).unwrap_err();
            assert!(
                matches!(err, BatchError::CorruptBatch { base_offset: 4, .. }),
                "{err}"
            );
        }
    }
}
