//! The operator's signals, read from a signalfd in the event loop rather than handled
//! asynchronously.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::FromRawFd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Reload,
    Cut,
    Restore,
}

pub struct SignalFd {
    file: File,
}

impl SignalFd {
    /// Blocks the signals the loop handles and opens a descriptor that reports them.
    /// Call before starting threads: the mask is per thread and inherited.
    pub fn open() -> io::Result<SignalFd> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the
        // descriptor returned by signalfd is owned by the File from here on.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGHUP,
                libc::SIGUSR1,
                libc::SIGUSR2,
            ] {
                libc::sigaddset(&mut set, signal);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(SignalFd {
                file: File::from_raw_fd(fd),
            })
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The next pending signal, if any.
    pub fn next(&mut self) -> io::Result<Option<Signal>> {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        loop {
            match self.file.read(&mut info) {
                Ok(n) if n == info.len() => {
                    // ssi_signo is the first field, a u32 in native byte order.
                    let number = u32::from_ne_bytes(info[0..4].try_into().expect("4 bytes"));
                    let signal = match number as i32 {
                        libc::SIGHUP => Signal::Reload,
                        libc::SIGUSR1 => Signal::Cut,
                        libc::SIGUSR2 => Signal::Restore,
                        _ => Signal::Stop,
                    };
                    return Ok(Some(signal));
                }
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
