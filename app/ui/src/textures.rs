//! GPU textures of frames: the live view is re-uploaded only when a new
//! frame arrives (5 Hz), thumbnails once per step and dropped when the step
//! leaves the context window.

use std::collections::BTreeMap;

use lumine_runtime::policy::SharedFrame;

/// Textures the panels draw.
#[derive(Default)]
pub struct Textures {
    live: Option<(u64, egui::TextureHandle)>,
    thumbs: BTreeMap<u64, egui::TextureHandle>,
    windows: Vec<egui::TextureHandle>,
    windows_serial: Option<usize>,
}

impl std::fmt::Debug for Textures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Textures")
            .field("thumbs", &self.thumbs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn color_image(frame: &SharedFrame) -> egui::ColorImage {
    egui::ColorImage::from_rgb([frame.width as usize, frame.height as usize], &frame.data)
}

impl Textures {
    /// Forgets everything (a new run).
    pub fn clear(&mut self) {
        self.live = None;
        self.thumbs.clear();
    }

    /// The live frame's texture, uploaded if `serial` is new.
    pub fn live(
        &mut self,
        ctx: &egui::Context,
        serial: u64,
        frame: &SharedFrame,
    ) -> &egui::TextureHandle {
        let stale = self.live.as_ref().is_none_or(|(s, _)| *s != serial);
        if stale {
            let image = color_image(frame);
            match &mut self.live {
                Some((s, handle)) => {
                    handle.set(image, egui::TextureOptions::LINEAR);
                    *s = serial;
                }
                None => {
                    let handle =
                        ctx.load_texture("live-frame", image, egui::TextureOptions::LINEAR);
                    self.live = Some((serial, handle));
                }
            }
        }
        match &self.live {
            Some((_, handle)) => handle,
            None => unreachable!("set above"),
        }
    }

    /// The thumbnail of `step`, uploaded on first use.
    pub fn thumb(
        &mut self,
        ctx: &egui::Context,
        step: u64,
        frame: &SharedFrame,
    ) -> &egui::TextureHandle {
        self.thumbs.entry(step).or_insert_with(|| {
            ctx.load_texture(
                format!("step-{step}"),
                color_image(frame),
                egui::TextureOptions::LINEAR,
            )
        })
    }

    /// Drops thumbnails of steps not in `keep`.
    pub fn retain_thumbs(&mut self, keep: impl Fn(u64) -> bool) {
        self.thumbs.retain(|step, _| keep(*step));
    }

    /// Textures of the window picker's thumbnails (re-uploaded when the list
    /// changes, identified by its address and length).
    pub fn window_thumbs(
        &mut self,
        ctx: &egui::Context,
        list: &[crate::backend::WindowChoice],
    ) -> Vec<Option<egui::TextureHandle>> {
        let serial = list.as_ptr() as usize ^ list.len();
        if self.windows_serial != Some(serial) {
            self.windows = list
                .iter()
                .enumerate()
                .filter_map(|(i, w)| {
                    w.thumbnail.as_ref().map(|t| {
                        ctx.load_texture(
                            format!("window-{i}"),
                            color_image(t),
                            egui::TextureOptions::LINEAR,
                        )
                    })
                })
                .collect();
            self.windows_serial = Some(serial);
        }
        let mut next = self.windows.iter();
        list.iter()
            .map(|w| w.thumbnail.as_ref().and_then(|_| next.next().cloned()))
            .collect()
    }
}
