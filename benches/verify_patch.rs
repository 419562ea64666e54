//! The per-batch work of the fast path: check the source CRC32C once (`VerifiedBatch`),
//! then write a new header and combine its CRC with the payload's (`patch`).

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strait::batch::{patch, ProducerStamp, VerifiedBatch};

use support::{batch_of, memcpy, BATCH_SIZES};

const IDEMPOTENT: ProducerStamp = ProducerStamp {
    producer_id: 4_000,
    producer_epoch: 0,
    base_sequence: 1_234,
    transactional: false,
};

fn verify_and_patch(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_patch");
    for size in BATCH_SIZES {
        let batch = batch_of(size);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("verify+patch", size),
            &batch,
            |b, batch| {
                b.iter(|| {
                    let verified =
                        VerifiedBatch::verify(black_box(batch.clone())).expect("valid CRC");
                    patch(&verified, &IDEMPOTENT)
                })
            },
        );
        let mut copy = vec![0u8; batch.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &batch, |b, batch| {
            b.iter(|| memcpy(&mut copy, batch.as_bytes()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::short_run();
    targets = verify_and_patch
}
criterion_main!(benches);
