//! One broker socket driven by a writer task and a reader task.
//!
//! Callers register a waiter under a fresh correlation id, hand their frame chunks to the
//! writer, and wait on a oneshot. The reader splits response frames and completes the waiter
//! whose correlation id leads the frame, so many requests can be in flight at once. When the
//! socket fails, closes, or a request times out, the pipeline closes: every waiter fails and
//! later sends fail at once, so callers retry on a new connection.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::error::WireError;
use super::frame::{correlation_id, split_response_header, FrameDecoder};

/// Requests queued for the writer before `send` waits: bounds memory, not throughput.
const OUTGOING_QUEUE: usize = 256;
/// Chunks handed to one writev call.
const MAX_IO_SLICES: usize = 64;

/// Why a pipeline stopped; turned into one error per failed waiter.
#[derive(Debug, Clone)]
enum CloseReason {
    ClosedByBroker,
    Io(io::ErrorKind, String),
    FrameTooLarge { size: usize, max: usize },
    TimedOut,
    Dropped,
}

impl CloseReason {
    fn from_io(error: &io::Error) -> Self {
        CloseReason::Io(error.kind(), error.to_string())
    }

    fn to_error(&self, broker: &str) -> WireError {
        let broker = broker.to_string();
        match self {
            CloseReason::Io(kind, message) => WireError::Io {
                broker,
                source: io::Error::new(*kind, message.clone()),
            },
            CloseReason::FrameTooLarge { size, max } => WireError::FrameTooLarge {
                broker,
                size: *size,
                max: *max,
            },
            CloseReason::ClosedByBroker | CloseReason::TimedOut | CloseReason::Dropped => {
                WireError::ConnectionClosed { broker }
            }
        }
    }
}

type Reply = oneshot::Sender<Result<Bytes, WireError>>;

struct Waiter {
    api: ApiKey,
    version: i16,
    reply: Reply,
}

#[derive(Default)]
struct InFlight {
    closed: Option<CloseReason>,
    waiting: HashMap<i32, Waiter>,
    tasks: Vec<AbortHandle>,
}

/// State shared by callers, the writer and the reader.
struct Shared {
    broker: String,
    in_flight: Mutex<InFlight>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, InFlight> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the pipeline dead, fails every waiter and stops both tasks.
    fn close(&self, reason: CloseReason) {
        let (waiters, tasks) = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(reason.clone());
            (
                std::mem::take(&mut state.waiting),
                std::mem::take(&mut state.tasks),
            )
        };
        if !waiters.is_empty() || !matches!(reason, CloseReason::Dropped) {
            tracing::debug!(broker = %self.broker, ?reason, in_flight = waiters.len(), "connection closed");
        }
        for (_, waiter) in waiters {
            let _ = waiter.reply.send(Err(reason.to_error(&self.broker)));
        }
        for task in tasks {
            task.abort();
        }
    }

    fn complete(&self, frame: Bytes) {
        let Some(id) = correlation_id(&frame) else {
            self.close(CloseReason::Io(
                io::ErrorKind::InvalidData,
                "response frame shorter than a correlation id".into(),
            ));
            return;
        };
        let Some(waiter) = self.lock().waiting.remove(&id) else {
            // Waiters stay registered until answered or the pipeline closes, so an unknown
            // id means the byte stream is out of step with our requests.
            self.close(CloseReason::Io(
                io::ErrorKind::InvalidData,
                format!("response with correlation id {id} that no request carried"),
            ));
            return;
        };
        let result = split_response_header(frame, waiter.api, waiter.version)
            .map(|(_, body)| body)
            .map_err(|source| WireError::Decode {
                api: waiter.api,
                version: waiter.version,
                broker: self.broker.clone(),
                source,
            });
        // The caller may have given up (cancelled); nothing to do then.
        let _ = waiter.reply.send(result);
    }
}

/// A request to send: its API and version (to strip the right response header) and the
/// chunks of the whole frame.
pub(crate) struct Outgoing {
    pub api: ApiKey,
    pub version: i16,
    pub chunks: Vec<Bytes>,
}

/// Correlation ids: unique per connection, wrapping from i32::MAX to i32::MIN.
#[derive(Debug)]
pub(crate) struct CorrelationIds(AtomicI32);

impl CorrelationIds {
    pub fn starting_at(first: i32) -> Self {
        Self(AtomicI32::new(first))
    }

    pub fn next(&self) -> i32 {
        // Atomic addition wraps on overflow.
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Vec<Bytes>>,
    ids: CorrelationIds,
    throttled_until: Mutex<Option<Instant>>,
}

impl Pipeline {
    pub fn start(broker: &str, stream: TcpStream, max_response_size: usize) -> Self {
        let (read_half, write_half) = stream.into_split();
        Self::start_on(broker, read_half, write_half, max_response_size)
    }

    fn start_on<R, W>(broker: &str, reader: R, writer: W, max_response_size: usize) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            broker: broker.to_string(),
            in_flight: Mutex::new(InFlight::default()),
        });
        let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
        let reader_task = tokio::spawn(read_loop(
            reader,
            FrameDecoder::new(max_response_size),
            shared.clone(),
        ));
        let writer_task = tokio::spawn(write_loop(writer, queue, shared.clone()));
        {
            let mut state = shared.lock();
            if state.closed.is_some() {
                reader_task.abort();
                writer_task.abort();
            } else {
                state.tasks = vec![reader_task.abort_handle(), writer_task.abort_handle()];
            }
        }
        Self {
            shared,
            outgoing,
            ids: CorrelationIds::starting_at(0),
            throttled_until: Mutex::new(None),
        }
    }

    pub fn broker(&self) -> &str {
        &self.shared.broker
    }

    pub fn is_alive(&self) -> bool {
        self.shared.lock().closed.is_none()
    }

    /// Holds back sends on this connection until `duration` from now has passed.
    pub fn throttle(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut throttled = self
            .throttled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if throttled.is_none_or(|current| current < until) {
            *throttled = Some(until);
        }
    }

    /// Sends one request and waits for its response body (the frame after the response
    /// header). `build` gets the correlation id and returns the frame.
    pub async fn send(
        &self,
        build: impl FnOnce(i32) -> Result<Outgoing, WireError>,
        timeout: Duration,
    ) -> Result<Bytes, WireError> {
        self.wait_out_throttle().await;
        let id = self.ids.next();
        let Outgoing {
            api,
            version,
            chunks,
        } = build(id)?;
        let (reply, response) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if let Some(reason) = &state.closed {
                return Err(reason.to_error(self.broker()));
            }
            state.waiting.insert(
                id,
                Waiter {
                    api,
                    version,
                    reply,
                },
            );
        }
        if self.outgoing.send(chunks).await.is_err() {
            // The writer stopped, which only happens once the pipeline is closed.
            return Err(self.closed_error());
        }
        match tokio::time::timeout(timeout, response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                // Responses come in request order: one that is overdue holds up the rest,
                // so the connection is given up, as Kafka's own clients do.
                self.shared.close(CloseReason::TimedOut);
                Err(WireError::Timeout {
                    api,
                    broker: self.broker().to_string(),
                    after: timeout,
                })
            }
        }
    }

    fn closed_error(&self) -> WireError {
        let state = self.shared.lock();
        state
            .closed
            .as_ref()
            .unwrap_or(&CloseReason::Dropped)
            .to_error(self.broker())
    }

    async fn wait_out_throttle(&self) {
        let until = *self
            .throttled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.close(CloseReason::Dropped);
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    decoder: FrameDecoder,
    shared: Arc<Shared>,
) {
    let mut buf = BytesMut::new();
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => shared.complete(frame),
                Ok(None) => break,
                Err(too_large) => {
                    shared.close(CloseReason::FrameTooLarge {
                        size: too_large.size,
                        max: too_large.max,
                    });
                    return;
                }
            }
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) => {
                shared.close(CloseReason::ClosedByBroker);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.close(CloseReason::from_io(&e));
                return;
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::Receiver<Vec<Bytes>>,
    shared: Arc<Shared>,
) {
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    while let Some(chunks) = queue.recv().await {
        pending.extend(chunks.into_iter().filter(|c| !c.is_empty()));
        // Whatever else is already queued goes out in the same writev calls.
        while pending.len() < MAX_IO_SLICES {
            match queue.try_recv() {
                Ok(more) => pending.extend(more.into_iter().filter(|c| !c.is_empty())),
                Err(_) => break,
            }
        }
        if let Err(e) = write_all_vectored(&mut writer, &mut pending).await {
            shared.close(CloseReason::from_io(&e));
            return;
        }
    }
}

/// Writes every chunk in order with vectored writes, advancing past partial writes without
/// copying any chunk.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    chunks: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    while !chunks.is_empty() {
        let mut written = {
            let slices: Vec<IoSlice<'_>> = chunks
                .iter()
                .take(MAX_IO_SLICES)
                .map(|c| IoSlice::new(c))
                .collect();
            writer.write_vectored(&slices).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let front = chunks.front_mut().expect("wrote more bytes than queued");
            if front.len() <= written {
                written -= front.len();
                chunks.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_wrap_around() {
        let ids = CorrelationIds::starting_at(i32::MAX - 1);
        assert_eq!(
            [ids.next(), ids.next(), ids.next()],
            [i32::MAX - 1, i32::MAX, i32::MIN]
        );
    }

    #[tokio::test]
    async fn vectored_writes_survive_short_writes() {
        // A 5-byte pipe forces partial writes in the middle of chunks.
        let (mut client, mut server) = tokio::io::duplex(5);
        let chunks: Vec<Bytes> = vec![
            Bytes::from_static(b"size"),
            Bytes::from_static(b"header-bytes"),
            Bytes::from(vec![7u8; 1000]),
            Bytes::from_static(b"tail"),
        ];
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        let mut queue: VecDeque<Bytes> = chunks.into();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 1020];
            server.read_exact(&mut got).await.unwrap();
            got
        });
        write_all_vectored(&mut client, &mut queue).await.unwrap();
        assert!(queue.is_empty());
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn oversized_response_fails_waiters_with_frame_too_large() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (read_half, write_half) = tokio::io::split(client);
        let pipeline = Pipeline::start_on("fake:1", read_half, write_half, 100);
        let broker = tokio::spawn(async move {
            let mut size = [0u8; 4];
            server.read_exact(&mut size).await.unwrap();
            let mut rest = vec![0u8; i32::from_be_bytes(size) as usize];
            server.read_exact(&mut rest).await.unwrap();
            server.write_all(&1000i32.to_be_bytes()).await.unwrap();
            server
        });
        let request = Bytes::from_static(&[0, 0, 0, 2, 9, 9]);
        let result = pipeline
            .send(
                |_| {
                    Ok(Outgoing {
                        api: ApiKey::Metadata,
                        version: 4,
                        chunks: vec![request],
                    })
                },
                Duration::from_secs(30),
            )
            .await;
        assert!(
            matches!(
                result,
                Err(WireError::FrameTooLarge {
                    size: 1000,
                    max: 100,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(!pipeline.is_alive());
        drop(broker.await.unwrap());
    }
}
