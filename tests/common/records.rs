//! Records as tests write and read them, and comparing two lists of them.

use std::fmt::Write as _;

use rdkafka::message::Timestamp;

/// A record header: key and optional value (Kafka allows null header values).
pub type Header = (String, Option<Vec<u8>>);

/// A record as stored in a topic partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp: Timestamp,
}

/// A record to produce. Unset fields are null (key, value), absent (headers), chosen by
/// the partitioner (partition) or the producer's clock (timestamp).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp: Option<i64>,
}

impl NewRecord {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_value(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.value = Some(value.into());
        self
    }

    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    pub fn with_null_header(mut self, key: impl Into<String>) -> Self {
        self.headers.push((key.into(), None));
        self
    }

    /// Sets the CreateTime in ms since the epoch. librdkafka reads 0 as "now", so
    /// timestamps must be positive.
    pub fn with_timestamp(mut self, millis: i64) -> Self {
        assert!(
            millis > 0,
            "librdkafka cannot produce timestamp {millis}: it reads 0 as now"
        );
        self.timestamp = Some(millis);
        self
    }

    pub fn in_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// What [`first_difference`] looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compare {
    /// Compare each partition's records in order but not their offsets (a mirrored
    /// topic may have gaps where the source had control records or aborted data).
    pub ignore_offsets: bool,
    /// Compare timestamps by value only, not CreateTime versus LogAppendTime.
    pub ignore_timestamp_type: bool,
}

impl Compare {
    pub const EXACT: Compare = Compare {
        ignore_offsets: false,
        ignore_timestamp_type: false,
    };
    pub const IGNORE_OFFSETS: Compare = Compare {
        ignore_offsets: true,
        ignore_timestamp_type: false,
    };
}

/// Sorts by partition, then offset: the order in which records are compared.
pub fn sort_records(records: &mut [Record]) {
    records.sort_by_key(|record| (record.partition, record.offset));
}

/// Describes the first record where `actual` differs from `expected` (both are sorted
/// by partition and offset first), or `None` if they agree.
pub fn first_difference(expected: &[Record], actual: &[Record], how: Compare) -> Option<String> {
    let mut expected = expected.to_vec();
    let mut actual = actual.to_vec();
    sort_records(&mut expected);
    sort_records(&mut actual);
    for (index, (want, got)) in expected.iter().zip(&actual).enumerate() {
        let differences = field_differences(want, got, how);
        if !differences.is_empty() {
            return Some(format!(
                "record #{index} differs ({}):\n{differences}  expected: {}\n  actual:   {}",
                count_summary(&expected, &actual),
                show_record(want),
                show_record(got)
            ));
        }
    }
    let summary = count_summary(&expected, &actual);
    match expected.len().cmp(&actual.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!(
            "{summary}; first missing record: {}",
            show_record(&expected[actual.len()])
        )),
        std::cmp::Ordering::Less => Some(format!(
            "{summary}; first unexpected record: {}",
            show_record(&actual[expected.len()])
        )),
    }
}

/// Panics with the first difference between the two lists.
pub fn assert_same_records(expected: &[Record], actual: &[Record], how: Compare) {
    if let Some(difference) = first_difference(expected, actual, how) {
        panic!("records differ: {difference}");
    }
}

fn field_differences(want: &Record, got: &Record, how: Compare) -> String {
    let mut out = String::new();
    let mut note = |field: &str, want: String, got: String| {
        let _ = writeln!(out, "  {field}: expected {want}, actual {got}");
    };
    if want.partition != got.partition {
        note(
            "partition",
            want.partition.to_string(),
            got.partition.to_string(),
        );
    }
    if !how.ignore_offsets && want.offset != got.offset {
        note("offset", want.offset.to_string(), got.offset.to_string());
    }
    if want.key != got.key {
        note(
            "key",
            show_bytes(want.key.as_deref()),
            show_bytes(got.key.as_deref()),
        );
    }
    if want.value != got.value {
        note(
            "value",
            show_bytes(want.value.as_deref()),
            show_bytes(got.value.as_deref()),
        );
    }
    if want.headers != got.headers {
        note(
            "headers",
            show_headers(&want.headers),
            show_headers(&got.headers),
        );
    }
    let same_time = if how.ignore_timestamp_type {
        want.timestamp.to_millis() == got.timestamp.to_millis()
    } else {
        want.timestamp == got.timestamp
    };
    if !same_time {
        note(
            "timestamp",
            format!("{:?}", want.timestamp),
            format!("{:?}", got.timestamp),
        );
    }
    out
}

fn count_summary(expected: &[Record], actual: &[Record]) -> String {
    format!(
        "expected {} records, actual {}",
        expected.len(),
        actual.len()
    )
}

fn show_record(record: &Record) -> String {
    format!(
        "partition {} offset {} key {} value {} headers {} {:?}",
        record.partition,
        record.offset,
        show_bytes(record.key.as_deref()),
        show_bytes(record.value.as_deref()),
        show_headers(&record.headers),
        record.timestamp
    )
}

fn show_headers(headers: &[Header]) -> String {
    let shown: Vec<String> = headers
        .iter()
        .map(|(key, value)| format!("{key:?}={}", show_bytes(value.as_deref())))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Printable text as a quoted string, anything else as hex; long values are cut.
fn show_bytes(bytes: Option<&[u8]>) -> String {
    const SHOWN: usize = 64;
    let Some(bytes) = bytes else {
        return "null".to_string();
    };
    let cut = &bytes[..bytes.len().min(SHOWN)];
    let more = if bytes.len() > SHOWN {
        format!("... ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    match std::str::from_utf8(cut) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}{more}"),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

/// A base for explicit record timestamps: an hour ago, fixed for the test binary.
/// Timestamps far in the past would let the brokers' time retention (7 days by default)
/// delete test data while a test still reads it.
pub fn base_timestamp() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        now - 3_600_000
    })
}

/// `count` records spread round-robin over `partitions`, keyed and valued by `topic` and
/// their number, with increasing timestamps.
pub fn spread_records(topic: &str, partitions: i32, count: usize) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            NewRecord::new()
                .in_partition(i as i32 % partitions)
                .with_key(format!("{topic}-{i}"))
                .with_value(format!("value {i} of {topic}"))
                .with_timestamp(base_timestamp() + i as i64)
        })
        .collect()
}

/// How many of `records` each of `partitions` partitions holds.
pub fn counts_per_partition(records: &[Record], partitions: i32) -> Vec<i64> {
    let mut counts = vec![0i64; partitions as usize];
    for record in records {
        counts[record.partition as usize] += 1;
    }
    counts
}
