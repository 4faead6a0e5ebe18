//! First-frame augmentation for the target model (FRTM's idea, done on the CPU): the real
//! frame plus copies where the object is flipped, scaled, rotated and moved over a background
//! whose object region has been filled in (push–pull inpainting) and blurred. Deterministic:
//! the transforms come from a fixed table.

use crate::io::Frame;
use rayon::prelude::*;

/// One synthetic view: flip the whole frame, or move the object.
#[derive(Clone, Copy, Debug)]
pub struct Transform {
    pub flip_frame: bool,
    pub flip_object: bool,
    pub scale: f32,
    /// Degrees, counter-clockwise.
    pub rotation: f32,
    /// Shift of the object centre as a fraction of the image size.
    pub shift: (f32, f32),
    /// Box-blur radius of the background, in pixels.
    pub blur: usize,
}

/// The fixed table: sample 0 is the real frame, then these.
pub const TRANSFORMS: [Transform; 6] = [
    Transform {
        flip_frame: true,
        flip_object: false,
        scale: 1.0,
        rotation: 0.0,
        shift: (0.0, 0.0),
        blur: 0,
    },
    Transform {
        flip_frame: false,
        flip_object: false,
        scale: 1.15,
        rotation: 10.0,
        shift: (0.08, 0.0),
        blur: 2,
    },
    Transform {
        flip_frame: false,
        flip_object: true,
        scale: 0.85,
        rotation: -10.0,
        shift: (-0.08, 0.04),
        blur: 0,
    },
    Transform {
        flip_frame: false,
        flip_object: false,
        scale: 1.0,
        rotation: 20.0,
        shift: (0.0, -0.05),
        blur: 4,
    },
    Transform {
        flip_frame: false,
        flip_object: false,
        scale: 0.7,
        rotation: -20.0,
        shift: (0.05, 0.05),
        blur: 1,
    },
    Transform {
        flip_frame: false,
        flip_object: true,
        scale: 1.3,
        rotation: 5.0,
        shift: (-0.05, -0.04),
        blur: 2,
    },
];

/// A frame with a binary object mask (1 = object), row-major.
#[derive(Clone, Debug)]
pub struct View {
    pub frame: Frame,
    pub mask: Vec<u8>,
}

fn flip_h<T: Copy>(data: &[T], w: usize, h: usize, ch: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    for y in 0..h {
        for x in (0..w).rev() {
            out.extend_from_slice(&data[(y * w + x) * ch..(y * w + x + 1) * ch]);
        }
    }
    out
}

/// Fills the pixels where `hole` is set from their surroundings: averages down a pyramid of
/// known pixels, then fills back up (push–pull).
fn inpaint(rgb: &[f32], hole: &[bool], w: usize, h: usize) -> Vec<f32> {
    let known: Vec<f32> = hole.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect();
    let mut levels = vec![(
        rgb.iter()
            .zip(known.iter().flat_map(|k| [*k; 3]))
            .map(|(v, k)| v * k)
            .collect::<Vec<f32>>(),
        known,
        w,
        h,
    )];
    while {
        let (_, _, lw, lh) = &levels[levels.len() - 1];
        *lw > 1 || *lh > 1
    } {
        let (c, k, lw, lh) = &levels[levels.len() - 1];
        let (nw, nh) = (lw.div_ceil(2), lh.div_ceil(2));
        let mut nc = vec![0f32; nw * nh * 3];
        let mut nk = vec![0f32; nw * nh];
        for y in 0..*lh {
            for x in 0..*lw {
                let (i, j) = (y * lw + x, (y / 2) * nw + x / 2);
                nk[j] += k[i];
                for ch in 0..3 {
                    nc[j * 3 + ch] += c[i * 3 + ch];
                }
            }
        }
        levels.push((nc, nk, nw, nh));
    }
    // Pull: normalise each level, fill unknown pixels from the coarser level.
    let mut coarse: Option<(Vec<f32>, usize)> = None;
    for (c, k, lw, lh) in levels.into_iter().rev() {
        let mut out = vec![0f32; lw * lh * 3];
        for y in 0..lh {
            for x in 0..lw {
                let i = y * lw + x;
                for ch in 0..3 {
                    let own = if k[i] > 0.0 {
                        c[i * 3 + ch] / k[i]
                    } else {
                        0.0
                    };
                    let up = coarse
                        .as_ref()
                        .map_or(own, |(cv, cw)| cv[((y / 2) * cw + x / 2) * 3 + ch]);
                    let a = k[i].min(1.0);
                    out[i * 3 + ch] = a * own + (1.0 - a) * up;
                }
            }
        }
        coarse = Some((out, lw));
    }
    coarse.map(|(v, _)| v).unwrap_or_default()
}

/// Box blur of radius r (separable), edges clamped.
fn box_blur(img: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    if r == 0 {
        return img.to_vec();
    }
    let pass = |src: &[f32], horizontal: bool| {
        let mut dst = vec![0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0f32; 3];
                for d in -(r as i64)..=(r as i64) {
                    let (sx, sy) = if horizontal {
                        ((x as i64 + d).clamp(0, w as i64 - 1) as usize, y)
                    } else {
                        (x, (y as i64 + d).clamp(0, h as i64 - 1) as usize)
                    };
                    for ch in 0..3 {
                        acc[ch] += src[(sy * w + sx) * 3 + ch];
                    }
                }
                for ch in 0..3 {
                    dst[(y * w + x) * 3 + ch] = acc[ch] / (2 * r + 1) as f32;
                }
            }
        }
        dst
    };
    pass(&pass(img, true), false)
}

/// Bilinear sample of an RGB f32 image at (x, y).
fn sample(img: &[f32], w: usize, h: usize, x: f32, y: f32) -> [f32; 3] {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0f32; 3];
    for (ch, o) in out.iter_mut().enumerate() {
        let p = |xx: usize, yy: usize| img[(yy * w + xx) * 3 + ch];
        *o = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
            + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
    }
    out
}

/// Applies one transform to a frame and its object mask. Returns None when the moved object
/// would cover fewer than 10 pixels.
pub fn apply(frame: &Frame, mask: &[u8], t: &Transform) -> Option<View> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if t.flip_frame {
        return Some(View {
            frame: Frame {
                width: frame.width,
                height: frame.height,
                rgb: flip_h(&frame.rgb, w, h, 3),
            },
            mask: flip_h(mask, w, h, 1),
        });
    }
    let area = mask.iter().filter(|&&m| m > 0).count();
    if area == 0 {
        return None;
    }
    let (mut cx, mut cy) = (0f32, 0f32);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m > 0) {
        cx += (i % w) as f32;
        cy += (i / w) as f32;
    }
    let (cx, cy) = (cx / area as f32, cy / area as f32);
    let rgb: Vec<f32> = frame.rgb.iter().map(|&v| v as f32).collect();
    // Background: the object region (grown by 2 px) filled in, then blurred.
    let mut hole = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] > 0 {
                for yy in y.saturating_sub(2)..(y + 3).min(h) {
                    for xx in x.saturating_sub(2)..(x + 3).min(w) {
                        hole[yy * w + xx] = true;
                    }
                }
            }
        }
    }
    let background = box_blur(&inpaint(&rgb, &hole, w, h), w, h, t.blur);
    // Object: output pixel p comes from q = R⁻¹ S⁻¹ (p − c') + c, with c' = c + shift.
    let (ncx, ncy) = (cx + t.shift.0 * w as f32, cy + t.shift.1 * h as f32);
    let (sin, cos) = (-t.rotation.to_radians()).sin_cos();
    let mut out = background;
    let mut out_mask = vec![0u8; w * h];
    let mut count = 0usize;
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = ((x as f32 - ncx) / t.scale, (y as f32 - ncy) / t.scale);
            let (mut sx, sy) = (cos * dx - sin * dy, sin * dx + cos * dy);
            if t.flip_object {
                sx = -sx;
            }
            let (qx, qy) = (sx + cx, sy + cy);
            let (ix, iy) = (qx.round(), qy.round());
            if ix < 0.0 || iy < 0.0 || ix >= w as f32 || iy >= h as f32 {
                continue;
            }
            if mask[iy as usize * w + ix as usize] > 0 {
                let px = sample(&rgb, w, h, qx, qy);
                out[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&px);
                out_mask[y * w + x] = 1;
                count += 1;
            }
        }
    }
    (count >= 10).then(|| View {
        frame: Frame {
            width: frame.width,
            height: frame.height,
            rgb: out
                .iter()
                .map(|v| v.round().clamp(0.0, 255.0) as u8)
                .collect(),
        },
        mask: out_mask,
    })
}

/// The real view and up to `extra` synthetic ones, from the fixed table.
pub fn views(frame: &Frame, mask: &[u8], extra: usize) -> Vec<View> {
    let mut out = vec![View {
        frame: frame.clone(),
        mask: mask.to_vec(),
    }];
    // Each view is independent (inpainting and blurring are the costly part): made in
    // parallel, kept in table order.
    let made: Vec<Option<View>> = TRANSFORMS[..extra.min(TRANSFORMS.len())]
        .par_iter()
        .map(|t| apply(frame, mask, t))
        .collect();
    out.extend(made.into_iter().flatten());
    out
}
