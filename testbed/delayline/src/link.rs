//! Addresses and routes of the two ends, set with iproute2: each namespace reaches the
//! other's network through its own tun device.

use std::fs::File;
use std::io;
use std::process::Command;

use crate::params::Options;
use crate::tun::create_in_namespace;
use crate::units::Cidr;

/// The two tun descriptors, A's first; the devices exist while these stay open.
pub fn bring_up(options: &Options) -> io::Result<[File; 2]> {
    let tun_a = create_in_namespace(&options.ns_a, &options.device, options.offload)?;
    let tun_b = create_in_namespace(&options.ns_b, &options.device, options.offload)?;
    configure_end(options, &options.ns_a, options.addr_a, options.addr_b)?;
    configure_end(options, &options.ns_b, options.addr_b, options.addr_a)?;
    Ok([tun_a, tun_b])
}

fn configure_end(options: &Options, namespace: &str, own: Cidr, far: Cidr) -> io::Result<()> {
    let device = options.device.as_str();
    let mtu = options.mtu.to_string();
    let own = own.to_string();
    let far = far.network();
    // No IPv6 link-local address: its neighbour discovery would only add noise.
    ip(
        namespace,
        &["link", "set", "dev", device, "addrgenmode", "none"],
    )?;
    ip(
        namespace,
        &["link", "set", "dev", device, "mtu", &mtu, "up"],
    )?;
    ip(namespace, &["addr", "add", &own, "dev", device])?;
    ip(namespace, &["route", "add", &far, "dev", device])?;
    // Servers bound to the namespace's address talk to themselves over loopback.
    ip(namespace, &["link", "set", "dev", "lo", "up"])?;
    Ok(())
}

fn ip(namespace: &str, args: &[&str]) -> io::Result<()> {
    let output = Command::new("ip")
        .arg("-n")
        .arg(namespace)
        .args(args)
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run ip ({e}); install iproute2: apt-get install -y iproute2"),
            )
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "ip -n {namespace} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}
