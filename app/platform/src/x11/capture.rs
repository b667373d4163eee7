//! [`X11Capture`]: frames of one window, through MIT-SHM when the server offers
//! it and from the window's Composite pixmap when the extension exists (so a
//! covered window still captures its own pixels), falling back to plain
//! `GetImage` on the window.

use std::time::Instant;

use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::errors::ReplyError;
use x11rb::protocol::composite::{self, ConnectionExt as _, Redirect};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ConnectionExt as _, Drawable, ImageFormat, ImageOrder, Pixmap, Window,
};

use super::shm::{self, ShmSegment};
use super::{Conn, os_err, reply_err, window_of};
use crate::{Frame, FrameSource, PlatformError, WindowId};

/// How pixels travel from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMethod {
    /// `ShmGetImage` into a shared segment: no copy through the socket.
    Shm,
    /// Plain `GetImage`: the pixels come through the socket.
    GetImage,
}

/// Byte positions of red, green and blue inside one 32-bit pixel as the server
/// sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PixelLayout {
    r: usize,
    g: usize,
    b: usize,
}

/// Captures one window.
pub struct X11Capture {
    c: Conn,
    target: Window,
    id: WindowId,
    layout: PixelLayout,
    shm: Option<ShmSegment>,
    allow_shm: bool,
    composite: bool,
    pixmap: Option<Pixmap>,
}

impl X11Capture {
    /// Captures `id` on `display` with the fastest path the server offers.
    pub fn new(display: Option<&str>, id: WindowId) -> Result<Self, PlatformError> {
        Self::with_options(display, id, true, true)
    }

    /// Like [`Self::new`], but MIT-SHM and Composite can be turned off (tests
    /// exercise the fallbacks; benchmarks compare them).
    pub fn with_options(
        display: Option<&str>,
        id: WindowId,
        allow_shm: bool,
        allow_composite: bool,
    ) -> Result<Self, PlatformError> {
        let c = Conn::open(display)?;
        let target = window_of(id)?;
        let attrs = c
            .conn
            .get_window_attributes(target)
            .map_err(os_err)?
            .reply()
            .map_err(|e| reply_err(id, e))?;
        let layout = pixel_layout(&c, attrs.visual)?;
        let composite = allow_composite && redirect(&c, target);
        let allow_shm = allow_shm && shm::supported(&c.conn);
        Ok(Self {
            c,
            target,
            id,
            layout,
            shm: None,
            allow_shm,
            composite,
            pixmap: None,
        })
    }

    /// The transfer path in use.
    #[must_use]
    pub fn method(&self) -> CaptureMethod {
        if self.allow_shm {
            CaptureMethod::Shm
        } else {
            CaptureMethod::GetImage
        }
    }

    /// Whether frames come from the window's Composite pixmap (correct even
    /// when other windows cover it).
    #[must_use]
    pub fn uses_composite(&self) -> bool {
        self.composite
    }

    /// Captures and scales to `width` x `height` (e.g. the model's 1280x720),
    /// see [`Frame::resized`].
    pub fn capture_scaled(&mut self, width: u32, height: u32) -> Result<Frame, PlatformError> {
        Ok(self.capture()?.resized(width, height))
    }

    /// Reads `w` x `h` pixels at (`x`, `y`) of `drawable` as packed RGB.
    fn read(
        &mut self,
        drawable: Drawable,
        x: i16,
        y: i16,
        w: u16,
        h: u16,
    ) -> Result<Vec<u8>, ReplyError> {
        let len = usize::from(w) * usize::from(h) * 4;
        if self.allow_shm && self.shm.as_ref().is_none_or(|s| s.len() < len) {
            if let Some(old) = self.shm.take() {
                old.detach(&self.c.conn);
            }
            match ShmSegment::create(&self.c.conn, len) {
                Ok(seg) => self.shm = Some(seg),
                // The server would not give us a segment: fall back for good.
                Err(_) => self.allow_shm = false,
            }
        }
        if let Some(seg) = self.shm.as_ref().filter(|_| self.allow_shm) {
            let reply = self
                .c
                .conn
                .shm_get_image(
                    drawable,
                    x,
                    y,
                    w,
                    h,
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    seg.seg,
                    0,
                )?
                .reply()?;
            let n = usize::try_from(reply.size).unwrap_or(0).min(len);
            return Ok(to_rgb(seg.bytes(n), self.layout));
        }
        let reply = self
            .c
            .conn
            .get_image(ImageFormat::Z_PIXMAP, drawable, x, y, w, h, !0)?
            .reply()?;
        Ok(to_rgb(&reply.data, self.layout))
    }

    /// A fresh name for the window's current backing pixmap. The server swaps
    /// the pixmap on resize and on unmap/map, so the name is renewed per frame
    /// (two small requests, no round trip).
    fn name_pixmap(&mut self) -> Result<Pixmap, PlatformError> {
        if let Some(old) = self.pixmap.take() {
            let _ = self.c.conn.free_pixmap(old);
        }
        let pixmap = self.c.conn.generate_id().map_err(os_err)?;
        self.c
            .conn
            .composite_name_window_pixmap(self.target, pixmap)
            .map_err(os_err)?;
        self.pixmap = Some(pixmap);
        Ok(pixmap)
    }

    /// Forgets errors of unchecked requests (a failed NameWindowPixmap) so they
    /// do not pile up in the connection's queue.
    fn drain_errors(&self) {
        while let Ok(Some(_)) = self.c.conn.poll_for_event() {}
    }
}

impl FrameSource for X11Capture {
    fn capture(&mut self) -> Result<Frame, PlatformError> {
        let (info, border) = self
            .c
            .request_info(self.target)?
            .finish_with_border(&self.c)?;
        if info.minimized || info.width == 0 || info.height == 0 {
            return Err(PlatformError::Minimized(self.id));
        }
        let (w, h) = (
            u16::try_from(info.width).map_err(os_err)?,
            u16::try_from(info.height).map_err(os_err)?,
        );
        let mut rgb = None;
        if self.composite {
            // The named pixmap includes the border; the client area starts inside it.
            let pixmap = self.name_pixmap()?;
            let b = i16::try_from(border).unwrap_or(0);
            match self.read(pixmap, b, b, w, h) {
                Ok(px) => rgb = Some(px),
                // No pixmap to name (no redirection after all): read the window itself.
                Err(ReplyError::X11Error(_)) => self.composite = false,
                Err(e) => return Err(os_err(e)),
            }
        }
        let rgb = match rgb {
            Some(px) => px,
            None => self
                .read(self.target, 0, 0, w, h)
                .map_err(|e| reply_err(self.id, e))?,
        };
        self.drain_errors();
        if rgb.len() != usize::from(w) * usize::from(h) * 3 {
            return Err(os_err(format!(
                "image of {} bytes for a {w}x{h} window",
                rgb.len()
            )));
        }
        Ok(Frame {
            width: u32::from(w),
            height: u32::from(h),
            rgb,
            captured_at: Instant::now(),
            window: info,
        })
    }
}

impl Drop for X11Capture {
    fn drop(&mut self) {
        if let Some(p) = self.pixmap.take() {
            let _ = self.c.conn.free_pixmap(p);
        }
        if let Some(seg) = self.shm.take() {
            seg.detach(&self.c.conn);
        }
        // The redirection ends with our connection.
    }
}

/// Redirects `target` (automatic: the server keeps painting the screen) so its
/// contents live in a pixmap we can name. False when Composite is missing or the
/// request is refused; a compositing manager's redirection is fine too.
fn redirect(c: &Conn, target: Window) -> bool {
    let present = c
        .conn
        .extension_information(composite::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_some();
    let version_ok = present
        && c.conn
            .composite_query_version(0, 4)
            .ok()
            .and_then(|v| v.reply().ok())
            .is_some_and(|v| (v.major_version, v.minor_version) >= (0, 2));
    if !version_ok {
        return false;
    }
    // BadAccess means a compositing manager already redirects it (manually), and
    // naming the pixmap works all the same; any other failure shows at the first
    // capture, which then falls back to the window.
    let _ = c
        .conn
        .composite_redirect_window(target, Redirect::AUTOMATIC)
        .ok()
        .map(|cookie| cookie.check());
    true
}

/// Where R, G and B sit in a 32-bit pixel of `visual`, or Unsupported for
/// anything but 24/32-bit true colour.
fn pixel_layout(c: &Conn, visual: u32) -> Result<PixelLayout, PlatformError> {
    let setup = c.conn.setup();
    let found = setup
        .roots
        .iter()
        .flat_map(|s| &s.allowed_depths)
        .find_map(|d| {
            d.visuals
                .iter()
                .find(|v| v.visual_id == visual)
                .map(|v| (d.depth, *v))
        });
    let Some((depth, vis)) = found else {
        return Err(PlatformError::Unsupported(format!(
            "visual {visual:#x} not on this screen"
        )));
    };
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.bits_per_pixel);
    let byte_of = |mask: u32| -> Option<usize> {
        let shift = mask.trailing_zeros();
        (mask >> shift == 0xff && shift.is_multiple_of(8)).then_some(shift as usize / 8)
    };
    match (
        bpp,
        byte_of(vis.red_mask),
        byte_of(vis.green_mask),
        byte_of(vis.blue_mask),
    ) {
        (Some(32), Some(r), Some(g), Some(b)) => {
            // Bytes in the image follow the server's image byte order.
            let flip = |i: usize| {
                if setup.image_byte_order == ImageOrder::LSB_FIRST {
                    i
                } else {
                    3 - i
                }
            };
            Ok(PixelLayout {
                r: flip(r),
                g: flip(g),
                b: flip(b),
            })
        }
        _ => Err(PlatformError::Unsupported(format!(
            "window depth {depth} with {bpp:?} bits per pixel (only 24/32-bit true colour)"
        ))),
    }
}

/// 32-bit pixels to packed RGB8.
fn to_rgb(src: &[u8], layout: PixelLayout) -> Vec<u8> {
    let n = src.len() / 4;
    let mut out = vec![0u8; n * 3];
    if layout == (PixelLayout { r: 2, g: 1, b: 0 }) {
        // The common case (BGRX little-endian) with constant offsets, which the
        // compiler unrolls and vectorises.
        for (s, d) in src.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
        }
    } else {
        for (s, d) in src.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
            d[0] = s[layout.r];
            d[1] = s[layout.g];
            d[2] = s[layout.b];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{PixelLayout, to_rgb};

    #[test]
    fn bgrx_becomes_rgb() {
        let src = [1, 2, 3, 0, 4, 5, 6, 0];
        assert_eq!(
            to_rgb(&src, PixelLayout { r: 2, g: 1, b: 0 }),
            [3, 2, 1, 6, 5, 4]
        );
        assert_eq!(
            to_rgb(&src, PixelLayout { r: 1, g: 2, b: 3 }),
            [2, 3, 0, 5, 6, 0]
        );
    }
}
