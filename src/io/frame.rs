//! Video frames: RGB u8 images read from JPEG/PNG files.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One RGB frame, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Frame {
    /// Decodes a JPEG or PNG file. A truncated or unreadable file is an error naming it.
    pub fn load(path: &Path) -> Result<Frame> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Self::decode(&bytes, path)
    }

    /// Decodes image bytes; `path` is only used in error messages.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Frame> {
        // The JPEG decoder fills a truncated file's missing part with grey instead of failing;
        // a JPEG must end with its EOI marker (FF D9), possibly followed by padding.
        if bytes.starts_with(&[0xFF, 0xD8]) {
            let tail = &bytes[bytes.len().saturating_sub(4096)..];
            if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
                return Err(Error::Decode {
                    path: path.to_path_buf(),
                    reason: "truncated JPEG (no end-of-image marker)".into(),
                });
            }
        }
        let img = image::load_from_memory(bytes).map_err(|e| Error::Decode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let rgb = img.into_rgb8();
        Ok(Frame {
            width: rgb.width(),
            height: rgb.height(),
            rgb: rgb.into_raw(),
        })
    }

    /// The frame scaled to `w × h` (bilinear, widened to average every source pixel when
    /// shrinking, as `image`'s Triangle filter; SIMD: ~1 ms for 854×480 → 640×360 where
    /// `image::imageops::resize` took ~20).
    pub fn resized(&self, w: u32, h: u32) -> Result<Frame> {
        use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
        if (w, h) == (self.width, self.height) {
            return Ok(self.clone());
        }
        let bad = |e: &dyn std::fmt::Display| Error::Invalid(format!("resizing a frame: {e}"));
        let src = images::ImageRef::new(self.width, self.height, &self.rgb, PixelType::U8x3)
            .map_err(|e| bad(&e))?;
        let mut dst = images::Image::new(w.max(1), h.max(1), PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Resizer::new()
            .resize(&src, &mut dst, &options)
            .map_err(|e| bad(&e))?;
        Ok(Frame {
            width: w.max(1),
            height: h.max(1),
            rgb: dst.into_vec(),
        })
    }

    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// Whether a file name looks like a frame image.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

/// The image files of a folder, sorted by name (frame order).
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    list_with(dir, is_image)
}

/// The files of a folder that pass `keep`, sorted by name.
pub fn list_with(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::read(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::read(dir, e))?.path();
        if path.is_file() && keep(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The file stem ("00012" for ".../00012.jpg"), used to match frames, masks and outputs.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
