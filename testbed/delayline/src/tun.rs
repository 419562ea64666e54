//! A tun device created inside a named network namespace, kept open by this process.
//!
//! The device belongs to the namespace of the thread that opens /dev/net/tun, so a
//! short-lived thread enters the namespace (setns) and opens it there: the namespace's
//! kernel routes packets into the device and this process reads them from the
//! descriptor, whatever namespace the process itself is in. The device disappears when
//! the descriptor closes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// Not in the libc crate: linux/if_tun.h.
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `_IOW('T', 208, unsigned int)`
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;

/// Opens device `device` inside `namespace`; with `vnet_header`, every packet read or
/// written starts with a virtio-net header (see `vnet`), which offload needs.
pub fn create_in_namespace(namespace: &str, device: &str, vnet_header: bool) -> io::Result<File> {
    let namespace_path = format!("/run/netns/{namespace}");
    let namespace_file = File::open(&namespace_path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open {namespace_path} ({e}); create the namespace first: ip netns add {namespace}"),
        )
    })?;
    let device = device.to_string();
    let namespace = namespace.to_string();
    std::thread::spawn(move || -> io::Result<File> {
        // SAFETY: setns changes only the namespaces of this thread, which ends here.
        if unsafe { libc::setns(namespace_file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot enter network namespace {namespace} ({e}); run as root"),
            ));
        }
        open_tun(&device, vnet_header).map_err(|e| {
            let fix = if e.raw_os_error() == Some(libc::EBUSY) {
                format!(
                    "device {device} already exists in namespace {namespace}: another delay line runs there; stop it first"
                )
            } else {
                "run as root on a kernel with tun support (modprobe tun)".to_string()
            };
            io::Error::new(
                e.kind(),
                format!("cannot create tun device {device} in namespace {namespace} ({e}); {fix}"),
            )
        })
    })
    .join()
    .map_err(|_| io::Error::other("the thread creating the tun device panicked"))?
}

fn open_tun(device: &str, vnet_header: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(device.bytes()) {
        *slot = byte as libc::c_char;
    }
    let mut flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    if vnet_header {
        flags |= IFF_VNET_HDR;
    }
    request.ifr_ifru.ifru_flags = flags;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Lets the kernel hand the device TCP packets of up to 64 KiB (checksums left to the
/// far end too), or only single segments. The device must have a virtio-net header.
/// Takes effect for the next packet: a socket's later packets are cut in software.
pub fn set_segmentation_offload(tun: &File, large_packets: bool) -> io::Result<()> {
    let mut features = TUN_F_CSUM;
    if large_packets {
        features |= TUN_F_TSO4 | TUN_F_TSO6;
    }
    // SAFETY: TUNSETOFFLOAD takes its argument by value.
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETOFFLOAD, features) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot set the tun device's offload features ({e}); start with --offload off"),
        ));
    }
    Ok(())
}
