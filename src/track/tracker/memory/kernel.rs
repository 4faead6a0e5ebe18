//! The readout's inner loop. For one query row and one memory row, every horizontal offset
//! `dx` in the window is one pass along the row: `L` query cells at once are scored against
//! the `L` memory cells `dx` to their right, one multiply-add per channel (no horizontal
//! sums), and a candidate only touches its cell's top-k list when it beats that list's floor
//! — after the first few offsets, rarely.

use super::keys::{Keys, LEFT, RIGHT};

/// Per query cell of one row, the `k` most similar candidates so far, best first.
pub struct RowTop {
    k: usize,
    sims: Vec<f32>,
    values: Vec<f32>,
    len: Vec<usize>,
    /// The similarity a candidate must beat to enter (−∞ until the list is full).
    floor: Vec<f32>,
}

impl RowTop {
    pub fn new(k: usize, cells: usize) -> RowTop {
        let k = k.max(1);
        RowTop {
            k,
            sims: vec![0.0; k * cells],
            values: vec![0.0; k * cells],
            len: vec![0; cells],
            // Padded so a block of lanes past the last cell can be compared.
            floor: vec![f32::NEG_INFINITY; cells + RIGHT],
        }
    }

    /// Inserts in descending order (ties keep the earlier candidate first: deterministic, and
    /// the order the plain reference sorts in).
    #[inline(always)]
    fn offer(&mut self, cell: usize, s: f32, v: f32) {
        let (k, n) = (self.k, self.len[cell]);
        let sims = &mut self.sims[cell * k..(cell + 1) * k];
        let values = &mut self.values[cell * k..(cell + 1) * k];
        let at = sims[..n].partition_point(|&e| e >= s);
        if at >= k {
            return;
        }
        let end = n.min(k - 1);
        sims.copy_within(at..end, at + 1);
        values.copy_within(at..end, at + 1);
        sims[at] = s;
        values[at] = v;
        self.len[cell] = end + 1;
        if end + 1 == k {
            self.floor[cell] = sims[k - 1];
        }
    }

    /// Cell `cell`'s softmax-weighted mean value (0 without candidates).
    pub fn read(&self, cell: usize, temperature: f32) -> f32 {
        let n = self.len[cell];
        let sims = &self.sims[cell * self.k..][..n];
        let values = &self.values[cell * self.k..][..n];
        let Some(&top) = sims.first() else {
            return 0.0;
        };
        let (mut num, mut den) = (0f32, 0f32);
        for (&s, &v) in sims.iter().zip(values) {
            let e = ((s - top) / temperature).exp();
            num += e * v;
            den += e;
        }
        num / den
    }
}

/// One query row against one memory row of the same width.
pub struct RowPair<'a> {
    /// The query's row (`Keys::row`), and the first and past-last cell scored.
    pub query: &'a [f32],
    pub cells: (usize, usize),
    /// The memory frame's row and its values along it.
    pub keys: &'a [f32],
    pub values: &'a [f32],
    /// Offsets `−radius..=radius` are scored.
    pub radius: usize,
}

/// Query cells scored at once (one AVX2 register).
const L: usize = 8;
/// Offsets scored at once: each query vector loaded once serves `G` memory vectors, and the
/// `G` sums are independent chains the CPU overlaps.
const G: usize = 5;

/// Offers every candidate of `pair` to `top` (cell `i` of `top` is query cell `cells.0 + i`),
/// offsets in ascending order: for each query cell, memory cells left to right.
pub fn scan(pair: &RowPair, grid: &Keys, top: &mut RowTop) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return blocks(pair, grid, top, avx2::block);
    }
    blocks(pair, grid, top, plain_block)
}

/// The sums of one block: `acc[j][l]` = query cell `x + l` · memory cell `x + l + dx + j`.
type Block = [[f32; L]; G];

/// Computes one block from the query runs starting at `q` and the memory runs starting at `k`
/// (channel `ch` at `ch · stride`).
type BlockFn = fn(q: &[f32], k: &[f32], channels: usize, stride: usize) -> Block;

/// Walks the query cells in blocks of `L` and, for each block, the offsets in groups of `G`
/// (the block's query vectors and the memory cells around them stay in the L1 cache), offering
/// every sum that beats its cell's floor.
#[inline(always)]
fn blocks(pair: &RowPair, grid: &Keys, top: &mut RowTop, block: BlockFn) {
    const { assert!(L + G <= LEFT + 2 && L + G <= RIGHT) };
    let (c, w, stride) = (grid.channels, grid.width as isize, grid.stride());
    let (x0, x1) = (pair.cells.0 as isize, pair.cells.1 as isize);
    let r = pair.radius.min(grid.width) as isize;
    let span = (c - 1) * stride;
    let mut x = x0;
    while x < x1 {
        let qx = LEFT + x as usize;
        let q = &pair.query[qx..qx + span + L];
        let mut dx = -r;
        while dx <= r {
            let g = G.min((r - dx + 1) as usize);
            // Skip the group when no cell of the block has a partner `x + dx + j` in the row.
            let (xa, xb) = (-(dx + g as isize - 1), w - dx);
            if x + (L as isize) > xa && x < xb {
                // Here `x + dx ≥ 2 − L − G`, so the memory slice starts at or after the row's
                // LEFT zeros and ends before its RIGHT zeros do.
                let kx = (x + dx + LEFT as isize) as usize;
                let acc = block(q, &pair.keys[kx..kx + span + L + G], c, stride);
                offer_block(&acc, (x, dx), pair, (x1, w), g, top);
            }
            dx += G as isize;
        }
        x += L as isize;
    }
}

/// Offers the first `g` offsets of a block, for each cell in offset order.
#[inline(always)]
fn offer_block(
    acc: &Block,
    (x, dx): (isize, isize),
    pair: &RowPair,
    (x1, w): (isize, isize),
    g: usize,
    top: &mut RowTop,
) {
    let cell0 = (x - pair.cells.0 as isize) as usize;
    // A quick test on the floors as the block began (floors only rise, so nothing that could
    // enter is skipped); the exact test is per candidate below.
    let floor: [f32; L] = std::array::from_fn(|l| top.floor[cell0 + l]);
    for (j, a) in acc.iter().enumerate().take(g) {
        if !a.iter().zip(&floor).fold(false, |b, (s, f)| b | (s > f)) {
            continue;
        }
        for (l, &s) in a.iter().enumerate() {
            let (cell, mx) = (x + l as isize, x + l as isize + dx + j as isize);
            if cell < x1 && (0..w).contains(&mx) && s > top.floor[cell0 + l] {
                top.offer(cell0 + l, s, pair.values[mx as usize]);
            }
        }
    }
}

/// The block without SIMD: the reference the AVX2 one is tested against, and the path on
/// other CPUs.
fn plain_block(q: &[f32], k: &[f32], channels: usize, stride: usize) -> Block {
    let mut acc = [[0f32; L]; G];
    for ch in 0..channels {
        let (q, k) = (&q[ch * stride..][..L], &k[ch * stride..][..L + G]);
        for (j, a) in acc.iter_mut().enumerate() {
            for l in 0..L {
                a[l] += q[l] * k[j + l];
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Block, G, L};
    use std::arch::x86_64::*;

    /// [`super::plain_block`] with AVX2 + FMA: per channel one query load and `G` fused
    /// multiply-adds into independent registers.
    pub fn block(q: &[f32], k: &[f32], channels: usize, stride: usize) -> Block {
        // SAFETY: only reached when the CPU has AVX2 and FMA (`super::scan` checks).
        unsafe { block_avx2(q, k, channels, stride) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn block_avx2(q: &[f32], k: &[f32], channels: usize, stride: usize) -> Block {
        let mut acc = [_mm256_setzero_ps(); G];
        for ch in 0..channels {
            let (q, k) = (&q[ch * stride..][..L], &k[ch * stride..][..L + G]);
            // SAFETY: `q` holds L values and `k` L + G: every load below reads inside them.
            unsafe {
                let qv = _mm256_loadu_ps(q.as_ptr());
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k.as_ptr().add(j)), *a);
                }
            }
        }
        let mut out = [[0f32; L]; G];
        for (o, a) in out.iter_mut().zip(&acc) {
            // SAFETY: `o` holds L = 8 floats.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), *a) };
        }
        out
    }
}
