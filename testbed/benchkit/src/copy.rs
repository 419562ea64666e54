//! Watching a copy: from the first record on the target until the target's end offsets
//! reach the source's, with the CPU time the writer and the target broker spent between.

use std::thread;
use std::time::{Duration, Instant};

use crate::kafka::Cluster;
use crate::process::Child;
use crate::procfs::{self, CpuSample};

const POLL_INTERVAL: Duration = Duration::from_millis(25);

pub struct CopyWatch<'a> {
    pub target: &'a Cluster,
    pub topic: &'a str,
    /// The end offsets the copy must reach, per partition.
    pub expected: &'a [i64],
    /// false for a writer that does not keep records in their source partition:
    /// then only the total counts.
    pub per_partition: bool,
    /// The process that writes the copy.
    pub writer: &'a Child,
    pub broker_pid: i32,
    pub launched: Instant,
    pub limit: Duration,
    /// The device the copy crosses, in this thread's network namespace (the emulated
    /// link), whose received bytes tell how full the link was.
    pub link_device: Option<&'a str>,
    /// Where to write the copy's progress, a line every quarter second (seconds since
    /// launch, records on the target, bytes the link device received, page cache bytes
    /// not yet written back, records on the target per partition):
    /// the shape of the start and the end that the summary rates average away.
    pub progress_file: Option<&'a std::path::Path>,
}

const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug)]
pub struct CopyWindow {
    /// From the writer's launch to the first record on the target.
    pub startup: Duration,
    /// From the first record on the target to the last.
    pub copy: Duration,
    /// From the moment the target held half of the records to the last: the rate once
    /// the start (TCP slow start across a long link, new connections) is behind.
    pub second_half: Duration,
    /// From a quarter of the records on the target to three quarters: the steady rate
    /// of a mirror whose buffers fill at the start and drain at the end (the second half
    /// then also counts data that crossed the link before it began).
    pub middle_half: Duration,
    pub writer_cpu_seconds: f64,
    pub broker_cpu_seconds: f64,
    /// Bytes the link device received in the middle half (from a quarter of the records
    /// on the target to three quarters): what crossed the link then, resent and
    /// fetched-twice bytes included.
    pub link_middle_half_bytes: Option<u64>,
    /// Share of the whole machine's CPU time that was busy during the copy, in percent.
    pub machine_busy_percent: Option<f64>,
    /// Share of it the hypervisor took, in percent.
    pub machine_steal_percent: Option<f64>,
}

impl CopyWatch<'_> {
    /// Polls until the copy is complete. An error names the writer, why, and its log.
    pub fn run(&self) -> Result<CopyWindow, String> {
        let total: i64 = self.expected.iter().sum();
        let partitions = self.expected.len() as i32;
        let mut first: Option<(CpuSample, CpuSample)> = None;
        let mut machine_at_first = None;
        let mut half: Option<Instant> = None;
        let mut quarter: Option<Instant> = None;
        let mut three_quarters: Option<Instant> = None;
        let mut link_at_quarter = None;
        let mut link_at_three_quarters = None;
        let mut progress =
            String::from("seconds\trecords\tlink_bytes\tdirty_bytes\tper_partition\n");
        let mut progress_at: Option<Instant> = None;
        loop {
            let name = &self.writer.name;
            // Checked before the offsets: a writer that ends after writing everything
            // (the ceiling's producer) is then still seen complete.
            let exited = self.writer.has_exited();
            // A topic being created answers "not leader" for a moment: poll again.
            let ends = match self.end_offsets(partitions) {
                Ok(ends) => ends,
                Err(_) if !exited && self.launched.elapsed() < self.limit => {
                    thread::sleep(POLL_INTERVAL);
                    continue;
                }
                Err(error) => return Err(format!("{name}: {error}")),
            };
            let done: i64 = ends.iter().sum();
            if self.progress_file.is_some()
                && progress_at.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL)
            {
                progress_at = Some(Instant::now());
                let link = self
                    .link_device
                    .and_then(procfs::received_bytes)
                    .map_or(String::from("-"), |bytes| bytes.to_string());
                let dirty = procfs::dirty_bytes().map_or(String::from("-"), |b| b.to_string());
                let partitions: Vec<String> = ends.iter().map(i64::to_string).collect();
                progress.push_str(&format!(
                    "{:.3}\t{done}\t{link}\t{dirty}\t{}\n",
                    self.launched.elapsed().as_secs_f64(),
                    partitions.join(",")
                ));
            }
            if first.is_none() && done > 0 {
                first = Some((self.sample_writer()?, self.sample_broker()?));
                machine_at_first = procfs::machine_cpu();
            }
            for (mark, numerator) in [(&mut quarter, 1), (&mut half, 2), (&mut three_quarters, 3)] {
                if mark.is_none() && 4 * done >= numerator * total {
                    *mark = Some(Instant::now());
                }
            }
            if let Some(device) = self.link_device {
                if quarter.is_some() && link_at_quarter.is_none() {
                    link_at_quarter = procfs::received_bytes(device);
                }
                if three_quarters.is_some() && link_at_three_quarters.is_none() {
                    link_at_three_quarters = procfs::received_bytes(device);
                }
            }
            if self.reached(&ends) {
                if let Some(path) = self.progress_file {
                    // The trace only helps a reader; a failed write is said, not fatal.
                    if let Err(error) = std::fs::write(path, &progress) {
                        eprintln!("bench: cannot write {}: {error}", path.display());
                    }
                }
                let (writer_end, broker_end) = (self.sample_writer()?, self.sample_broker()?);
                let machine_end = procfs::machine_cpu().zip(machine_at_first);
                let machine_busy_percent =
                    machine_end.and_then(|(end, start)| end.busy_percent_since(&start));
                let machine_steal_percent =
                    machine_end.and_then(|(end, start)| end.steal_percent_since(&start));
                let (writer_start, broker_start) = first.expect("records arrived");
                return Ok(CopyWindow {
                    startup: writer_start.at - self.launched,
                    copy: writer_end.at - writer_start.at,
                    second_half: writer_end.at.saturating_duration_since(
                        half.expect("half of the records arrived before all of them"),
                    ),
                    middle_half: three_quarters
                        .expect("three quarters of the records arrived before all of them")
                        .saturating_duration_since(
                            quarter.expect("a quarter of the records arrived before all of them"),
                        ),
                    writer_cpu_seconds: writer_end.seconds - writer_start.seconds,
                    broker_cpu_seconds: broker_end.seconds - broker_start.seconds,
                    link_middle_half_bytes: link_at_three_quarters
                        .zip(link_at_quarter)
                        .and_then(|(end, start)| end.checked_sub(start)),
                    machine_busy_percent,
                    machine_steal_percent,
                });
            }
            if exited {
                let code = self.writer.exited().map_or(-1, |f| f.code);
                return Err(format!(
                    "{name} exited (code {code}) with {done} of {total} records copied{}",
                    self.writer.last_words()
                ));
            }
            if self.launched.elapsed() > self.limit {
                return Err(format!(
                    "{name} copied {done} of {total} records in the time limit of {} s",
                    self.limit.as_secs()
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn reached(&self, ends: &[i64]) -> bool {
        if self.per_partition {
            ends.iter()
                .zip(self.expected)
                .all(|(end, want)| end >= want)
        } else {
            ends.iter().sum::<i64>() >= self.expected.iter().sum::<i64>()
        }
    }

    fn end_offsets(&self, partitions: i32) -> Result<Vec<i64>, String> {
        self.target
            .end_offsets(self.topic, partitions)
            .map_err(|e| format!("{e:#}"))
    }

    fn sample_writer(&self) -> Result<CpuSample, String> {
        procfs::cpu(self.writer.pid).map_err(|e| format!("{}: {e:#}", self.writer.name))
    }

    fn sample_broker(&self) -> Result<CpuSample, String> {
        procfs::cpu(self.broker_pid).map_err(|e| format!("target broker: {e:#}"))
    }
}
