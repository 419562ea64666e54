//! Encoding one produce request over many partitions: the batches stay separate
//! `Bytes` chunks for a vectored write, where a copying encoder would gather them into
//! one buffer (the memcpy baseline).

mod support;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strait::batch::{patch, ProducerStamp, VerifiedBatch};
use strait::wire::{encode_produce_request, ProduceTopicBatches, PRODUCE_VERSIONS};

use support::{batch_of, memcpy, BATCH_SIZES};

const PARTITIONS: i32 = 16;

fn request_topics(batch_size: usize) -> Vec<ProduceTopicBatches> {
    let verified = VerifiedBatch::verify(batch_of(batch_size)).expect("valid CRC");
    let patched = patch(&verified, &ProducerStamp::NON_IDEMPOTENT);
    vec![ProduceTopicBatches {
        name: "bench.mirrored-topic".into(),
        topic_id: uuid::Uuid::from_u128(0x5742_6e63_6800_4000_8000_0000_0000_0001),
        partitions: (0..PARTITIONS).map(|p| (p, patched.chunks())).collect(),
    }]
}

fn batch_bytes(topics: &[ProduceTopicBatches]) -> Vec<Bytes> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().flat_map(|(_, chunks)| chunks.clone()))
        .collect()
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("produce_encode");
    let version = PRODUCE_VERSIONS.end - 1;
    for size in BATCH_SIZES {
        let topics = request_topics(size);
        let chunks = batch_bytes(&topics);
        let total: usize = chunks.iter().map(Bytes::len).sum();
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_with_input(
            BenchmarkId::new(format!("encode_v{version}_{PARTITIONS}_partitions"), size),
            &topics,
            |b, topics| {
                b.iter(|| {
                    encode_produce_request(
                        version,
                        7,
                        "strait",
                        None,
                        -1,
                        30_000,
                        black_box(topics),
                    )
                })
            },
        );
        let mut request = vec![0u8; total];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &chunks, |b, chunks| {
            b.iter(|| {
                let mut at = 0;
                for chunk in chunks {
                    memcpy(&mut request[at..at + chunk.len()], chunk);
                    at += chunk.len();
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::short_run();
    targets = encode
}
criterion_main!(benches);
