//! Label masks: one object id per pixel (0 = background, 255 = void in DAVIS-2017).
//!
//! Read from DAVIS-2017 / YouTube-VOS palette PNGs (the palette index is the id), DAVIS-2016
//! grey PNGs (0 / 255, one object), and written as palette PNGs with the DAVIS palette.

use crate::error::{Error, Result};
use crate::io::{atomic, palette};
use std::io::BufReader;
use std::path::Path;

/// An object-id map, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub ids: Vec<u8>,
}

/// How a mask PNG stores its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskEncoding {
    /// A palette PNG whose index is the object id (DAVIS 2017, YouTube-VOS).
    Indexed,
    /// An 8-bit grey PNG; DAVIS 2016 uses 0 / 255 for one object.
    Grey,
}

/// The value of id 255 in DAVIS-2017 annotations: pixels excluded from the task.
pub const VOID: u8 = 255;

impl Mask {
    pub fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            ids: vec![0; width as usize * height as usize],
        }
    }

    /// The label map at `w × h`, nearest neighbour (pixel centres).
    pub fn resized_nearest(&self, w: u32, h: u32) -> Mask {
        if (w, h) == (self.width, self.height) {
            return self.clone();
        }
        let mut out = Mask::new(w, h);
        let src = |d: u32, n: u32, s: u32| {
            (((d as f64 + 0.5) * s as f64 / n as f64) as usize).min(s as usize - 1)
        };
        for y in 0..h {
            let sy = src(y, h, self.height);
            for x in 0..w {
                let sx = src(x, w, self.width);
                out.ids[y as usize * w as usize + x as usize] =
                    self.ids[sy * self.width as usize + sx];
            }
        }
        out
    }

    /// Reads a label PNG as stored: palette indices or grey values, and how they were stored.
    /// RGB(A), grey+alpha and 16-bit PNGs are refused: their values are not ids.
    pub fn read_png(path: &Path) -> Result<(Mask, MaskEncoding)> {
        let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
        let mut decoder = png::Decoder::new(BufReader::new(file));
        decoder.set_transformations(png::Transformations::IDENTITY);
        let bad = |e: png::DecodingError| Error::Decode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut reader = decoder.read_info().map_err(bad)?;
        let (color, depth) = reader.output_color_type();
        let encoding = match color {
            png::ColorType::Indexed => MaskEncoding::Indexed,
            png::ColorType::Grayscale if depth == png::BitDepth::Eight => MaskEncoding::Grey,
            // Some DAVIS-2016 annotations are grey+alpha; the grey channel holds the label.
            png::ColorType::GrayscaleAlpha if depth == png::BitDepth::Eight => MaskEncoding::Grey,
            other => return Err(Error::format(path, unsupported_mask(other, depth))),
        };
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Error::format(path, "image too large"))?;
        let mut buf = vec![0u8; size];
        let info = reader.next_frame(&mut buf).map_err(bad)?;
        let (w, h) = (info.width, info.height);
        let bits = depth as u8 as usize;
        let mut ids = Vec::with_capacity(w as usize * h as usize);
        for row in buf.chunks(info.line_size).take(h as usize) {
            if color == png::ColorType::GrayscaleAlpha {
                ids.extend(row[..2 * w as usize].iter().step_by(2));
            } else if bits == 8 {
                ids.extend_from_slice(&row[..w as usize]);
            } else {
                // Palette PNGs may pack 1, 2 or 4 bits per pixel.
                let per_byte = 8 / bits;
                let mask = ((1u16 << bits) - 1) as u8;
                for x in 0..w as usize {
                    let byte = row[x / per_byte];
                    let shift = 8 - bits * (x % per_byte + 1);
                    ids.push((byte >> shift) & mask);
                }
            }
        }
        Ok((
            Mask {
                width: w,
                height: h,
                ids,
            },
            encoding,
        ))
    }

    /// Reads a DAVIS-2017 / YouTube-VOS mask: palette indices are ids (255 = void kept as is).
    /// An 8-bit grey PNG is accepted with its values as ids, as the DAVIS toolkit does.
    pub fn read_ids(path: &Path) -> Result<Mask> {
        Ok(Self::read_png(path)?.0)
    }

    /// Reads a DAVIS-2016 mask: every non-zero pixel is the one object (id 1).
    pub fn read_binary(path: &Path) -> Result<Mask> {
        let mut mask = Self::read_png(path)?.0;
        for v in &mut mask.ids {
            *v = u8::from(*v != 0);
        }
        Ok(mask)
    }

    /// Errors unless the mask is `width`x`height` (the size of its frame).
    pub fn check_size(&self, width: u32, height: u32, path: &Path) -> Result<()> {
        if self.width != width || self.height != height {
            return Err(Error::SizeMismatch {
                path: path.to_path_buf(),
                got_w: self.width,
                got_h: self.height,
                want_w: width,
                want_h: height,
            });
        }
        Ok(())
    }

    /// The largest id present, ignoring void.
    pub fn max_id(&self) -> u8 {
        self.ids
            .iter()
            .copied()
            .filter(|&v| v != VOID)
            .max()
            .unwrap_or(0)
    }

    /// The ids present (not background, not void), ascending.
    pub fn object_ids(&self) -> Vec<u8> {
        let mut seen = [false; 256];
        for &v in &self.ids {
            seen[v as usize] = true;
        }
        (1..255u8).filter(|&i| seen[i as usize]).collect()
    }

    /// Number of pixels with id `id`.
    pub fn area(&self, id: u8) -> usize {
        self.ids.iter().filter(|&&v| v == id).count()
    }

    /// Encodes as an 8-bit palette PNG with the DAVIS palette, ids preserved.
    pub fn encode_png(
        &self,
        out: impl std::io::Write,
    ) -> std::result::Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(out, self.width, self.height);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(palette::davis_palette().to_vec());
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.ids)?;
        w.finish()
    }

    /// Writes a palette PNG atomically (temp file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic::write_with(path, |w| {
            self.encode_png(w)
                .map_err(|e| Error::format(path, format!("cannot encode PNG: {e}")))
        })
    }
}

/// Reads a mask a user gives: a palette PNG (ids as stored, void 255 → background), or a grey
/// PNG, where 0/255 (DAVIS 2016) means one object with id 1 and other values are ids.
pub fn read_user_mask(path: &Path) -> Result<Mask> {
    let (mut m, enc) = Mask::read_png(path)?;
    let binary_grey = enc == MaskEncoding::Grey && m.ids.iter().all(|&v| v == 0 || v == 255);
    for v in &mut m.ids {
        if *v == VOID {
            *v = u8::from(binary_grey);
        }
    }
    Ok(m)
}

/// Checks a first mask: the right size, at least one object, ids 1..N without gaps.
pub fn check_first_mask(m: &Mask, width: u32, height: u32, path: &Path) -> Result<()> {
    m.check_size(width, height, path)?;
    let ids = m.object_ids();
    if ids.is_empty() {
        return Err(Error::format(
            path,
            "the mask holds no object (all pixels are background)",
        ));
    }
    if let Some(missing) = (1..=*ids.last().unwrap_or(&1)).find(|i| !ids.contains(i)) {
        return Err(Error::format(
            path,
            format!("object ids must be 1..N without gaps: found {ids:?}, {missing} is missing"),
        ));
    }
    Ok(())
}

/// Why a PNG of this colour type and depth is not a mask, and what to save instead.
fn unsupported_mask(color: png::ColorType, depth: png::BitDepth) -> String {
    use png::ColorType::*;
    let bits = depth as u8;
    let found = match color {
        Rgb | Rgba => format!(
            "an RGB{} PNG: its pixels are colours, not object ids",
            if color == Rgba { "A" } else { "" }
        ),
        Grayscale | GrayscaleAlpha => format!("a {bits}-bit grey PNG"),
        Indexed => format!("a {bits}-bit palette PNG"),
    };
    format!(
        "{found}; a mask is a palette PNG (ids 1..N) or an 8-bit grey PNG (0 = background, 255 = the object): save it as one of these"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_png_round_trips_ids() {
        let dir = std::env::temp_dir().join(format!("rvos-mask-{}", std::process::id()));
        let path = dir.join("m.png");
        let mut m = Mask::new(7, 3);
        m.ids[0] = 1;
        m.ids[8] = 2;
        m.ids[20] = 255;
        m.save(&path).unwrap();
        let (back, enc) = Mask::read_png(&path).unwrap();
        assert_eq!(enc, MaskEncoding::Indexed);
        assert_eq!(back, m);
        assert_eq!(back.object_ids(), vec![1, 2]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
