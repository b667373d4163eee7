//! A MIT-SHM segment created by the X server and mapped into this process.
//!
//! This is the crate's only unsafe code on Linux: mapping the segment's file
//! descriptor (`mmap`) and viewing it as bytes. The server writes into the
//! segment only while it handles our `ShmGetImage`, and we read it only after
//! the reply has arrived, so the bytes are stable while we look at them.
#![allow(unsafe_code)] // mmap of the server-provided segment; see the module docs

use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use super::os_err;
use crate::PlatformError;

/// A shared-memory segment attached on both sides.
pub(crate) struct ShmSegment {
    pub seg: shm::Seg,
    ptr: NonNull<u8>,
    len: usize,
}

// The mapping is plain memory owned by this value; moving it across threads is fine.
unsafe impl Send for ShmSegment {}

/// Whether the server offers MIT-SHM 1.2 (server-created segments passed as fds).
pub(crate) fn supported(conn: &RustConnection) -> bool {
    let present = conn
        .extension_information(shm::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_some();
    present
        && conn
            .shm_query_version()
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|v| (v.major_version, v.minor_version) >= (1, 2))
}

impl ShmSegment {
    /// Asks the server for a segment of `len` bytes and maps it read-only.
    pub fn create(conn: &RustConnection, len: usize) -> Result<Self, PlatformError> {
        let size = u32::try_from(len).map_err(os_err)?;
        let seg = conn.generate_id().map_err(os_err)?;
        let reply = conn
            .shm_create_segment(seg, size, false)
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?;
        let fd: OwnedFd = reply.shm_fd;
        // SAFETY: a fresh shared read-only mapping of a file the server sized to
        // `len`; no Rust object aliases it, and it is unmapped in Drop.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                &fd,
                0,
            )
        };
        let ptr = match ptr {
            Ok(p) => p,
            Err(e) => {
                let _ = conn.shm_detach(seg);
                return Err(os_err(format!("mmap of the MIT-SHM segment: {e}")));
            }
        };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| os_err("mmap returned a null mapping"))?;
        Ok(Self { seg, ptr, len })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The first `n` bytes of the segment, as the last `ShmGetImage` left them.
    pub fn bytes(&self, n: usize) -> &[u8] {
        // SAFETY: the mapping is `len` bytes, readable, alive as long as `self`;
        // the server does not write to it outside our (completed) requests.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), n.min(self.len)) }
    }

    /// Detaches the segment on the server side (the mapping goes in Drop).
    pub fn detach(&self, conn: &RustConnection) {
        let _ = conn.shm_detach(self.seg);
        let _ = conn.flush();
    }
}

impl Drop for ShmSegment {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping created in `create`, unmapped once.
        unsafe {
            let _ = munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
