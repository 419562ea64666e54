//! Reading a topic with Kafka's own console consumer: the oracle that is not librdkafka.

use std::io::Write;

use rdkafka::message::Timestamp;

use super::cluster::{kafka_tool, Cluster};
use super::records::{sort_records, Header, Record};

// Exits when no record arrives for this long, so a short topic cannot hang the test.
const IDLE_TIMEOUT_MS: &str = "30000";

/// Reads `count` records of the topic (read_committed) with Kafka's ConsoleConsumer of
/// the cluster's own version, sorted by partition and offset.
///
/// The console prints text, so keys, values and headers must be UTF-8 without tabs or
/// line breaks, header keys and values without ',' and ':', and the text "null" reads
/// back as null.
pub fn read_topic_with_console_consumer(
    cluster: Cluster,
    topic: &str,
    count: usize,
) -> Vec<Record> {
    let mut formatter = tempfile::NamedTempFile::new().expect("temporary formatter config");
    formatter
        .write_all(
            b"print.timestamp=true\nprint.partition=true\nprint.offset=true\n\
              print.headers=true\nprint.key=true\nprint.value=true\n",
        )
        .expect("write formatter config");
    let formatter_path = formatter
        .path()
        .to_str()
        .expect("UTF-8 temp path")
        .to_string();
    let count_arg = count.to_string();
    let output = kafka_tool(
        cluster,
        "console-consumer",
        &[
            "--bootstrap-server",
            cluster.bootstrap(),
            "--topic",
            topic,
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--max-messages",
            &count_arg,
            "--timeout-ms",
            IDLE_TIMEOUT_MS,
            "--formatter-config",
            &formatter_path,
        ],
    );
    let stdout = String::from_utf8(output.stdout).expect("console consumer prints UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "console consumer on {topic} ({cluster:?}) failed ({}):\n{stderr}",
        output.status
    );
    let mut records: Vec<Record> = stdout
        .lines()
        .map(|line| {
            parse_line(line).unwrap_or_else(|e| panic!("console consumer line {line:?}: {e}"))
        })
        .collect();
    sort_records(&mut records);
    records
}

// DefaultMessageFormatter prints: <type>:<ts> \t Partition:<p> \t Offset:<o> \t <headers> \t <key> \t <value>
fn parse_line(line: &str) -> Result<Record, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [timestamp, partition, offset, headers, key, value] = fields[..] else {
        return Err(format!(
            "expected 6 tab-separated fields, found {}",
            fields.len()
        ));
    };
    Ok(Record {
        partition: labelled_number(partition, "Partition:")? as i32,
        offset: labelled_number(offset, "Offset:")?,
        key: nullable(key),
        value: nullable(value),
        headers: parse_headers(headers)?,
        timestamp: parse_timestamp(timestamp)?,
    })
}

fn labelled_number(field: &str, label: &str) -> Result<i64, String> {
    field
        .strip_prefix(label)
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| format!("expected {label}<number>, found {field:?}"))
}

fn parse_timestamp(field: &str) -> Result<Timestamp, String> {
    if field == "NO_TIMESTAMP" {
        return Ok(Timestamp::NotAvailable);
    }
    if let Some(millis) = field.strip_prefix("CreateTime:") {
        return millis
            .parse()
            .map(Timestamp::CreateTime)
            .map_err(|e| format!("{field:?}: {e}"));
    }
    if let Some(millis) = field.strip_prefix("LogAppendTime:") {
        return millis
            .parse()
            .map(Timestamp::LogAppendTime)
            .map_err(|e| format!("{field:?}: {e}"));
    }
    Err(format!("unknown timestamp {field:?}"))
}

fn parse_headers(field: &str) -> Result<Vec<Header>, String> {
    if field == "NO_HEADERS" {
        return Ok(Vec::new());
    }
    field
        .split(',')
        .map(|header| {
            header
                .split_once(':')
                .map(|(key, value)| (key.to_string(), nullable(value)))
                .ok_or_else(|| format!("header {header:?} lacks ':'"))
        })
        .collect()
}

fn nullable(text: &str) -> Option<Vec<u8>> {
    (text != "null").then(|| text.as_bytes().to_vec())
}
