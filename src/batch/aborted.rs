//! READ_COMMITTED filtering of one fetch response partition, the way Kafka's Java
//! consumer does it (CompletedFetch): a producer joins the aborted set once the first
//! offset of one of its aborted transactions is at or before the batch's last offset,
//! and leaves it at its ABORT marker. Control batches are never forwarded.

use std::cmp::Reverse;
use std::collections::HashSet;

use super::control::{control_marker, ControlMarker};
use super::header::{RecordBatch, NO_PRODUCER_ID};

#[derive(Debug, Clone, Default)]
pub struct AbortedTransactions {
    /// (first_offset, producer_id), sorted by first offset, latest first so the next
    /// one to start is popped from the end.
    pending: Vec<(i64, i64)>,
    aborted_producers: HashSet<i64>,
}

impl AbortedTransactions {
    /// From the partition's `aborted_transactions` of a fetch response, as
    /// `(producer_id, first_offset)` pairs in any order.
    pub fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut pending: Vec<(i64, i64)> = aborted
            .into_iter()
            .map(|(producer_id, first_offset)| (first_offset, producer_id))
            .collect();
        pending.sort_unstable_by_key(|&(first_offset, _)| Reverse(first_offset));
        Self {
            pending,
            aborted_producers: HashSet::new(),
        }
    }

    /// Whether `batch` must not be forwarded. Call it for every v2 batch of the
    /// partition's response, in order.
    pub fn should_drop(&mut self, batch: &RecordBatch) -> bool {
        if batch.producer_id() != NO_PRODUCER_ID {
            while let Some(&(first_offset, producer_id)) = self.pending.last() {
                if first_offset > batch.last_offset() {
                    break;
                }
                self.aborted_producers.insert(producer_id);
                self.pending.pop();
            }
            if is_abort_marker(batch) {
                self.aborted_producers.remove(&batch.producer_id());
            } else if batch.is_transactional()
                && self.aborted_producers.contains(&batch.producer_id())
            {
                return true;
            }
        }
        batch.is_control()
    }
}

/// A marker that cannot be parsed is no abort, as in Kafka's consumer (it would fail
/// there; here the control batch is dropped all the same).
fn is_abort_marker(batch: &RecordBatch) -> bool {
    matches!(control_marker(batch), Ok(Some(ControlMarker::Abort)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::header::Compression;
    use crate::batch::test_support::{kp_batch, kp_record, marker_batch, txn_batch};
    use kafka_protocol::records::Record as KpRecord;

    const ABORT: i16 = 0;
    const COMMIT: i16 = 1;

    fn decisions(aborted: &[(i64, i64)], batches: &[RecordBatch]) -> Vec<bool> {
        let mut filter = AbortedTransactions::new(aborted.iter().copied());
        batches.iter().map(|b| filter.should_drop(b)).collect()
    }

    fn plain(offset: i64) -> RecordBatch {
        RecordBatch::new(kp_batch(
            &[kp_record(offset, 1, None, Some(b"v"))],
            Compression::None,
        ))
        .unwrap()
    }

    fn idempotent(producer_id: i64, offset: i64) -> RecordBatch {
        let record = KpRecord {
            producer_id,
            producer_epoch: 0,
            sequence: 0,
            ..kp_record(offset, 1, None, Some(b"v"))
        };
        RecordBatch::new(kp_batch(&[record], Compression::None)).unwrap()
    }

    #[test]
    fn interleaved_producers_drop_only_the_aborted_one() {
        let batches = [
            txn_batch(1, 0), // aborted txn of 1
            txn_batch(2, 1), // committed txn of 2
            plain(2),        // no producer id
            txn_batch(1, 3), // still the aborted txn of 1
            marker_batch(1, 4, ABORT),
            txn_batch(2, 5),
            marker_batch(2, 6, COMMIT),
            plain(7),
        ];
        assert_eq!(
            decisions(&[(1, 0)], &batches),
            [true, false, false, true, true, false, true, false]
        );
    }

    #[test]
    fn a_new_transaction_after_the_abort_marker_is_kept() {
        let batches = [
            txn_batch(1, 0),
            marker_batch(1, 1, ABORT),
            txn_batch(1, 2),
            marker_batch(1, 3, COMMIT),
        ];
        assert_eq!(decisions(&[(1, 0)], &batches), [true, true, false, true]);
    }

    #[test]
    fn a_producer_joins_the_aborted_set_only_from_its_first_offset() {
        let batches = [
            txn_batch(1, 0),
            marker_batch(1, 1, COMMIT),
            txn_batch(1, 2),
            marker_batch(1, 3, ABORT),
            txn_batch(1, 4),
            txn_batch(1, 5),
            marker_batch(1, 6, ABORT),
        ];
        // the list is unordered on purpose: it is sorted by first offset
        assert_eq!(
            decisions(&[(1, 5), (1, 2)], &batches),
            [false, true, true, true, false, true, true]
        );
    }

    #[test]
    fn an_aborted_transaction_starting_inside_a_batch_drops_that_batch() {
        let records: Vec<KpRecord> = (10..13)
            .map(|offset| KpRecord {
                transactional: true,
                producer_id: 6,
                producer_epoch: 0,
                sequence: 0,
                ..kp_record(offset, 1, None, Some(b"v"))
            })
            .collect();
        let batch = RecordBatch::new(kp_batch(&records, Compression::None)).unwrap();
        assert_eq!(decisions(&[(6, 12)], std::slice::from_ref(&batch)), [true]);
        assert_eq!(decisions(&[(6, 13)], &[batch]), [false]);
    }

    #[test]
    fn non_transactional_batches_of_an_aborted_producer_id_are_kept() {
        let batches = [txn_batch(1, 0), idempotent(1, 1)];
        assert_eq!(decisions(&[(1, 0)], &batches), [true, false]);
    }

    #[test]
    fn control_batches_are_always_dropped_even_without_aborted_transactions() {
        let batches = [
            marker_batch(1, 0, COMMIT),
            marker_batch(2, 1, ABORT),
            plain(2),
        ];
        assert_eq!(decisions(&[], &batches), [true, true, false]);
    }
}
