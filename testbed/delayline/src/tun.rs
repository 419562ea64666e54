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

pub fn create_in_namespace(namespace: &str, device: &str) -> io::Result<File> {
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
        open_tun(&device).map_err(|e| {
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

fn open_tun(device: &str) -> io::Result<File> {
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
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}
