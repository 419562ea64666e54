//! A stop signal ends `strait run` cleanly at any point, also while its flows are still
//! being prepared: an operator's Ctrl-C, or a supervisor's SIGTERM right after a start,
//! must not kill it outright. No brokers involved: the source is a listener that accepts
//! connections and never answers, so strait stays in its first metadata request.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc;
use std::time::Duration;

use common::Strait;

/// Accepts connections on 127.0.0.1 and keeps them open, reading and discarding what
/// arrives; sends the count of accepted connections on `accepted`.
fn silent_broker(accepted: mpsc::Sender<usize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the silent broker");
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut reader = stream.try_clone().expect("clone the accepted stream");
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            });
            held.push(stream);
            if accepted.send(held.len()).is_err() {
                return;
            }
        }
    });
    address
}

fn stop_while_preparing(signal_name: &str) {
    let (accepted, connections) = mpsc::channel();
    let silent = silent_broker(accepted);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mirror.properties");
    std::fs::write(
        &file,
        format!(
            "clusters = quiet, here\n\
             quiet.bootstrap.servers = {silent}\n\
             here.bootstrap.servers = {silent}\n\
             quiet->here.enabled = true\n\
             quiet->here.topics = .*\n"
        ),
    )
    .unwrap();

    let strait = Strait::start(&file);
    // A connection to the silent broker means strait is past start-up and inside the
    // preparation of its flow, waiting for an answer that never comes.
    connections
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "strait never connected to the silent broker at {silent}; its log:\n{}",
                strait.log()
            )
        });
    let (status, log) = strait.stop_with(signal_name);
    assert_eq!(
        status.signal(),
        None,
        "SIG{signal_name} while preparing killed strait instead of stopping it; log:\n{log}"
    );
    assert!(
        status.success(),
        "strait exited with {status} after SIG{signal_name} while preparing; log:\n{log}"
    );
    assert!(
        log.contains("stopped before this flow had started"),
        "strait's log does not say the flow was stopped before it started:\n{log}"
    );
}

#[test]
fn sigterm_while_a_flow_is_being_prepared_exits_cleanly() {
    stop_while_preparing("TERM");
}

#[test]
fn sigint_while_a_flow_is_being_prepared_exits_cleanly() {
    stop_while_preparing("INT");
}
