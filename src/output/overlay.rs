//! Frames with their masks drawn on them: each object tinted and outlined in its DAVIS colour,
//! and a badge on objects whose mask came from the reuse path ("R") or a copy ("C") rather than
//! a full computation.

use crate::io::palette::color_of;
use crate::io::{Frame, Mask};
use crate::track::gate::Path;

/// 5×7 glyphs of the badge letters, one row per byte (bit 4 = leftmost column).
const GLYPH_R: [u8; 7] = [
    0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
];
const GLYPH_C: [u8; 7] = [
    0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
];

/// How strongly the inside of an object is tinted.
const TINT: f32 = 0.45;
/// Outline half-width in pixels.
const OUTLINE: i64 = 1;

/// Draws `mask` on `frame` (same size). `paths` gives, per object id, the path its mask took on
/// this frame; reused and copied objects get a badge at the top-left of their box.
pub fn draw(frame: &Frame, mask: &Mask, paths: &[(u8, Path)]) -> Frame {
    let (w, h) = (frame.width as i64, frame.height as i64);
    let mut out = frame.clone();
    // The palette once (color_of rebuilds it per call).
    let palette = crate::io::palette::davis_palette();
    let label = |x: i64, y: i64| -> u8 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0
        } else {
            mask.ids[(y * w + x) as usize]
        }
    };
    for y in 0..h {
        for x in 0..w {
            let id = label(x, y);
            if id == 0 || id == 255 {
                continue;
            }
            let c = &palette[id as usize * 3..id as usize * 3 + 3];
            let i = ((y * w + x) * 3) as usize;
            // Outside the frame counts as background, so objects touching the border are
            // outlined there too.
            let edge = (-OUTLINE..=OUTLINE)
                .any(|d| d != 0 && (label(x + d, y) != id || label(x, y + d) != id));
            for (o, &c) in out.rgb[i..i + 3].iter_mut().zip(c) {
                *o = if edge {
                    c
                } else {
                    (*o as f32 * (1.0 - TINT) + c as f32 * TINT).round() as u8
                };
            }
        }
    }
    for &(id, path) in paths {
        let glyph = match path {
            Path::Reused => GLYPH_R,
            Path::Copied => GLYPH_C,
            _ => continue,
        };
        let (x0, y0) = top_left(mask, id).unwrap_or((4 + 22 * (id as u32 - 1), 4));
        badge(&mut out, x0, y0, color_of(id), &glyph);
    }
    out
}

/// The top-left corner of an object's bounding box.
fn top_left(mask: &Mask, id: u8) -> Option<(u32, u32)> {
    let w = mask.width as usize;
    let (mut x0, mut y0) = (usize::MAX, usize::MAX);
    for (i, _) in mask.ids.iter().enumerate().filter(|(_, v)| **v == id) {
        x0 = x0.min(i % w);
        y0 = y0.min(i / w);
    }
    (x0 != usize::MAX).then_some((x0 as u32, y0 as u32))
}

/// A 16×20 badge: the object's colour, a white border and a white letter (scale 2).
fn badge(frame: &mut Frame, x0: u32, y0: u32, color: [u8; 3], glyph: &[u8; 7]) {
    const BW: u32 = 16;
    const BH: u32 = 20;
    let x0 = x0.min(frame.width.saturating_sub(BW));
    let y0 = y0.min(frame.height.saturating_sub(BH));
    for dy in 0..BH {
        for dx in 0..BW {
            let (x, y) = (x0 + dx, y0 + dy);
            if x >= frame.width || y >= frame.height {
                continue;
            }
            let border = dx == 0 || dy == 0 || dx == BW - 1 || dy == BH - 1;
            // The glyph's 5×7 cells, 2×2 pixels each, start at (3, 3).
            let (gx, gy) = (dx as i64 - 3, dy as i64 - 3);
            let ink = (0..10).contains(&gx)
                && (0..14).contains(&gy)
                && glyph[(gy / 2) as usize] & (0b10000 >> (gx / 2)) != 0;
            let c = if border || ink {
                [255, 255, 255]
            } else {
                color
            };
            let i = ((y * frame.width + x) * 3) as usize;
            frame.rgb[i..i + 3].copy_from_slice(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_tinted_outlined_and_badged_when_reused() {
        let frame = Frame {
            width: 40,
            height: 30,
            rgb: vec![0; 40 * 30 * 3],
        };
        let mut mask = Mask::new(40, 30);
        for y in 10..20 {
            for x in 10..30 {
                mask.ids[y * 40 + x] = 1;
            }
        }
        let plain = draw(&frame, &mask, &[(1, Path::Computed)]);
        let red = color_of(1);
        let px =
            |f: &Frame, x: usize, y: usize| f.rgb[(y * 40 + x) * 3..(y * 40 + x) * 3 + 3].to_vec();
        assert_eq!(px(&plain, 10, 15), red.to_vec(), "edge in full colour");
        assert_eq!(
            px(&plain, 20, 15)[0],
            (red[0] as f32 * TINT).round() as u8,
            "inside tinted"
        );
        assert_eq!(px(&plain, 5, 5), vec![0, 0, 0], "background untouched");
        let reused = draw(&frame, &mask, &[(1, Path::Reused)]);
        assert_ne!(plain, reused);
        assert_eq!(
            px(&reused, 10, 10),
            vec![255, 255, 255],
            "badge border at the box corner"
        );
    }
}
