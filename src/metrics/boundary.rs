//! F, the boundary measure, as the toolkit's `f_measure`: boundaries from `_seg2bmap`,
//! matched within a disk of radius ceil(0.008 · image diagonal) (a dilation test, not a
//! bipartite assignment).

/// The boundary pixels of one object as sorted x positions per row (CSR layout): sparse, so
/// the disk test below touches only boundary pixels.
struct Boundary {
    row_start: Vec<u32>,
    xs: Vec<u32>,
}

impl Boundary {
    /// The toolkit's `_seg2bmap` of `labels == id`: a pixel is a boundary when it differs from
    /// its right, lower or lower-right neighbour (outside the image counts as background); the
    /// last row looks right only, the last column down only, the corner is never a boundary.
    fn of(labels: &[u8], id: u8, w: usize, h: usize) -> Boundary {
        let mut row_start = Vec::with_capacity(h + 1);
        let mut xs = Vec::new();
        if w == 0 || h == 0 {
            return Boundary {
                row_start: vec![0; h + 1],
                xs,
            };
        }
        let binary = |y: usize, out: &mut [u8]| {
            for (o, &v) in out.iter_mut().zip(&labels[y * w..(y + 1) * w]) {
                *o = u8::from(v == id);
            }
        };
        let (mut cur, mut next, mut b) = (vec![0u8; w], vec![0u8; w], vec![0u8; w]);
        binary(0, &mut cur);
        for y in 0..h {
            row_start.push(xs.len() as u32);
            if y + 1 < h {
                binary(y + 1, &mut next);
                // Branch-free so it vectorises; the last column looks down only.
                for x in 0..w - 1 {
                    let m = cur[x];
                    b[x] = (m ^ cur[x + 1]) | (m ^ next[x]) | (m ^ next[x + 1]);
                }
                b[w - 1] = cur[w - 1] ^ next[w - 1];
            } else {
                // The last row looks right only; the corner is never a boundary.
                for x in 0..w - 1 {
                    b[x] = cur[x] ^ cur[x + 1];
                }
                b[w - 1] = 0;
            }
            for (chunk_i, chunk) in b.chunks(32).enumerate() {
                if chunk.iter().any(|&v| v != 0) {
                    let base = chunk_i * 32;
                    xs.extend(
                        chunk
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| **v != 0)
                            .map(|(i, _)| (base + i) as u32),
                    );
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
        row_start.push(xs.len() as u32);
        Boundary { row_start, xs }
    }

    fn len(&self) -> usize {
        self.xs.len()
    }

    fn row(&self, y: usize) -> &[u32] {
        &self.xs[self.row_start[y] as usize..self.row_start[y + 1] as usize]
    }

    /// Whether any boundary pixel lies in row `y` between `x0` and `x1` inclusive.
    fn any_in(&self, y: usize, x0: u32, x1: u32) -> bool {
        let row = self.row(y);
        let i = row.partition_point(|&x| x < x0);
        i < row.len() && row[i] <= x1
    }

    /// How many of our boundary pixels have a pixel of `other` within the disk, i.e. the sum
    /// of `self ∧ dilate(other, disk(r))` with a zero border.
    fn matched_in(&self, other: &Boundary, half_widths: &[u32], h: usize) -> u64 {
        let r = half_widths.len() as i64 / 2;
        let mut n = 0u64;
        for y in 0..h {
            for &x in self.row(y) {
                let hit = (-r..=r).any(|dy| {
                    let yy = y as i64 + dy;
                    if yy < 0 || yy >= h as i64 {
                        return false;
                    }
                    let hw = half_widths[(dy + r) as usize];
                    other.any_in(yy as usize, x.saturating_sub(hw), x + hw)
                });
                n += u64::from(hit);
            }
        }
        n
    }
}

/// Half-widths of the rows of skimage's `disk(r)` = {dx² + dy² ≤ r²}, for dy = -r..=r.
fn disk_half_widths(r: u32) -> Vec<u32> {
    let r = r as i64;
    (-r..=r)
        .map(|dy| {
            let mut hw = 0i64;
            while (hw + 1) * (hw + 1) + dy * dy <= r * r {
                hw += 1;
            }
            hw as u32
        })
        .collect()
}

/// The toolkit's `bound_pix` for an image: ceil(0.008 · ‖(h, w)‖).
pub fn bound_radius(w: usize, h: usize) -> u32 {
    (0.008 * ((h * h + w * w) as f64).sqrt()).ceil() as u32
}

/// F between `res == res_id` (the prediction) and `gt == gt_id`, both `w`x`h`.
pub fn f_measure(gt: &[u8], gt_id: u8, res: &[u8], res_id: u8, w: usize, h: usize) -> f64 {
    let fg = Boundary::of(res, res_id, w, h);
    let gtb = Boundary::of(gt, gt_id, w, h);
    let disk = disk_half_widths(bound_radius(w, h));
    let (n_fg, n_gt) = (fg.len(), gtb.len());
    let (precision, recall) = match (n_fg, n_gt) {
        (0, 0) => (1.0, 1.0),
        (0, _) => (1.0, 0.0),
        (_, 0) => (0.0, 1.0),
        _ => (
            fg.matched_in(&gtb, &disk, h) as f64 / n_fg as f64,
            gtb.matched_in(&fg, &disk, h) as f64 / n_gt as f64,
        ),
    };
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_of_radius_8_has_197_pixels() {
        let hw = disk_half_widths(8);
        let n: u32 = hw.iter().map(|h| 2 * h + 1).sum();
        assert_eq!(n, 197);
        assert_eq!(bound_radius(854, 480), 8);
        assert_eq!(bound_radius(1280, 720), 12);
    }

    #[test]
    fn boundary_follows_seg2bmap() {
        // A 2x2 square at (1..3, 1..3) in a 4x4 image.
        let mut m = vec![0u8; 16];
        for (x, y) in [(1, 1), (2, 1), (1, 2), (2, 2)] {
            m[y * 4 + x] = 1;
        }
        let b = Boundary::of(&m, 1, 4, 4);
        let mut pixels = Vec::new();
        for y in 0..4 {
            for &x in b.row(y) {
                pixels.push((x, y));
            }
        }
        // Background side of the top/left transitions, object side of the bottom/right ones.
        assert_eq!(
            pixels,
            vec![
                (0, 0),
                (1, 0),
                (2, 0),
                (0, 1),
                (2, 1),
                (0, 2),
                (1, 2),
                (2, 2)
            ]
        );
    }
}
