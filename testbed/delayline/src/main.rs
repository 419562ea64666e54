//! delayline: a WAN link between two network namespaces, emulated in user space because
//! this kernel has no netem qdisc. See `delayline --help`.

mod forward;
mod link;
mod params;
mod ring;
mod shaper;
mod signals;
mod stats;
mod tun;
mod units;
mod vnet;

use std::process::ExitCode;

use params::{Options, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(reason) => {
            eprintln!("delayline: {reason}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("delayline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> std::io::Result<()> {
    let tuns = link::bring_up(&options)?;
    let signals = signals::SignalFd::open()?;
    eprintln!(
        "delayline: ready: {} {} <-> {} {} (device {}, mtu {}, offload {}), {}",
        options.ns_a,
        options.addr_a,
        options.ns_b,
        options.addr_b,
        options.device,
        options.mtu,
        if options.offload { "on" } else { "off" },
        options.shaping
    );
    forward::Forwarder::new(options, tuns, signals).run()?;
    eprintln!("delayline: stopped");
    Ok(())
}
