//! The readout's inner loop. For up to two query rows and one memory row, every horizontal
//! offset `dx` in the window is one pass along the rows: `L` query cells of each row at once are
//! scored against the `L` memory cells `dx` to their right, one multiply-add per channel (no
//! horizontal sums; each memory vector loaded serves both query rows), and a candidate only
//! touches its cell's top-k list when it beats that list's floor — after the first few
//! offsets, rarely. The floor test runs on whole vectors.

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

    /// The floors of cells `cell..cell + L`.
    #[inline(always)]
    fn floors(&self, cell: usize) -> [f32; L] {
        std::array::from_fn(|l| self.floor[cell + l])
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

/// One memory row and the query cells scored against it.
pub struct MemoryRow<'a> {
    /// The first and past-last query cell scored.
    pub cells: (usize, usize),
    /// The memory frame's row and its values along it.
    pub keys: &'a [f32],
    pub values: &'a [f32],
    /// Offsets `−radius..=radius` are scored.
    pub radius: usize,
}

/// A query row (`Keys::row`) and its cells' top-k lists (cell `i` of the lists is query cell
/// `MemoryRow::cells.0 + i`).
pub struct QueryRow<'a> {
    pub keys: &'a [f32],
    pub top: &'a mut RowTop,
}

/// Query cells scored at once (one AVX2 register).
const L: usize = 8;
/// Offsets scored at once: each query vector loaded once serves `G` memory vectors, and the
/// `G · R` sums are independent chains the CPU overlaps.
const G: usize = 5;

/// The sums of one block for one query row: `sums[j][l]` = query cell `x + l` · memory cell
/// `x + l + dx + j`; `above[j]` has bit `l` set when that sum beats the cell's floor.
struct Block {
    sums: [[f32; L]; G],
    above: [u8; G],
}

/// Offers every candidate of the memory row to each query row (taken two at a time), offsets
/// in ascending order: for each query cell, memory cells left to right.
pub fn scan(rows: &mut [QueryRow], memory: &MemoryRow, grid: &Keys) {
    for pair in rows.chunks_mut(2) {
        match pair {
            [a, b] => scan_rows::<2>([a, b], memory, grid),
            [a] => scan_rows::<1>([a], memory, grid),
            _ => {}
        }
    }
}

fn scan_rows<const R: usize>(rows: [&mut QueryRow; R], memory: &MemoryRow, grid: &Keys) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return blocks(rows, memory, grid, avx2::block::<R>);
    }
    blocks(rows, memory, grid, plain_block::<R>)
}

/// Computes one block per query row from the query runs starting at `q[r]` and the memory runs
/// starting at `k` (channel `ch` at `ch · stride`), testing the sums against `floor[r]`.
type BlockFn<const R: usize> = fn(
    q: [&[f32]; R],
    k: &[f32],
    channels: usize,
    stride: usize,
    floor: [[f32; L]; R],
) -> [Block; R];

/// Walks the query cells in blocks of `L` and, for each block, the offsets in groups of `G`
/// (the block's query vectors and the memory cells around them stay in the L1 cache), offering
/// every sum that beats its cell's floor.
#[inline(always)]
fn blocks<const R: usize>(
    mut rows: [&mut QueryRow; R],
    memory: &MemoryRow,
    grid: &Keys,
    block: BlockFn<R>,
) {
    const { assert!(L + G <= LEFT + 2 && L + G <= RIGHT) };
    let (c, w, stride) = (grid.channels, grid.width as isize, grid.stride());
    let (x0, x1) = (memory.cells.0 as isize, memory.cells.1 as isize);
    let r = memory.radius.min(grid.width) as isize;
    let span = (c - 1) * stride;
    let mut x = x0;
    while x < x1 {
        let qx = LEFT + x as usize;
        let q: [&[f32]; R] = std::array::from_fn(|i| &rows[i].keys[qx..qx + span + L]);
        let cell0 = (x - x0) as usize;
        let mut dx = -r;
        while dx <= r {
            let g = G.min((r - dx + 1) as usize);
            // Skip the group when no cell of the block has a partner `x + dx + j` in the row.
            let (xa, xb) = (-(dx + g as isize - 1), w - dx);
            if x + (L as isize) > xa && x < xb {
                // Here `x + dx ≥ 2 − L − G`, so the memory slice starts at or after the row's
                // LEFT zeros and ends before its RIGHT zeros do.
                let kx = (x + dx + LEFT as isize) as usize;
                // Floors as the block begins (they only rise, so nothing that could enter is
                // skipped); the exact test is per candidate in `offer_block`.
                let floor = std::array::from_fn(|i| rows[i].top.floors(cell0));
                let out = block(q, &memory.keys[kx..kx + span + L + G], c, stride, floor);
                for (row, b) in rows.iter_mut().zip(&out) {
                    offer_block(b, (x, dx), memory, (x1, w), g, row.top);
                }
            }
            dx += G as isize;
        }
        x += L as isize;
    }
}

/// Offers the first `g` offsets of a block, for each cell in offset order.
#[inline(always)]
fn offer_block(
    b: &Block,
    (x, dx): (isize, isize),
    memory: &MemoryRow,
    (x1, w): (isize, isize),
    g: usize,
    top: &mut RowTop,
) {
    let cell0 = (x - memory.cells.0 as isize) as usize;
    for (j, (sums, &above)) in b.sums.iter().zip(&b.above).enumerate().take(g) {
        let mut bits = above;
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (cell, mx) = (x + l as isize, x + l as isize + dx + j as isize);
            let s = sums[l];
            if cell < x1 && (0..w).contains(&mx) && s > top.floor[cell0 + l] {
                top.offer(cell0 + l, s, memory.values[mx as usize]);
            }
        }
    }
}

/// The block without SIMD: the reference the AVX2 one is tested against, and the path on
/// other CPUs.
fn plain_block<const R: usize>(
    q: [&[f32]; R],
    k: &[f32],
    channels: usize,
    stride: usize,
    floor: [[f32; L]; R],
) -> [Block; R] {
    std::array::from_fn(|i| {
        let mut sums = [[0f32; L]; G];
        for ch in 0..channels {
            let (q, k) = (&q[i][ch * stride..][..L], &k[ch * stride..][..L + G]);
            for (j, a) in sums.iter_mut().enumerate() {
                for l in 0..L {
                    a[l] += q[l] * k[j + l];
                }
            }
        }
        let above = std::array::from_fn(|j| {
            (0..L).fold(0u8, |m, l| m | (u8::from(sums[j][l] > floor[i][l]) << l))
        });
        Block { sums, above }
    })
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Block, G, L};
    use std::arch::x86_64::*;

    /// [`super::plain_block`] with AVX2 + FMA: per channel one load per memory vector, shared
    /// by the `R` query rows' fused multiply-adds into independent registers.
    pub fn block<const R: usize>(
        q: [&[f32]; R],
        k: &[f32],
        channels: usize,
        stride: usize,
        floor: [[f32; L]; R],
    ) -> [Block; R] {
        debug_assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
        let span = channels.saturating_sub(1) * stride;
        assert!(q.iter().all(|q| q.len() >= span + L) && k.len() >= span + L + G);
        // SAFETY: only reached when the CPU has AVX2 and FMA (`super::scan_rows` checks); the
        // slices hold every value the kernel loads (asserted just above).
        unsafe { block_avx2(q, k, channels, stride, floor) }
    }

    // Indexed loops: the offsets and rows are registers, unrolled by the compiler.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2<const R: usize>(
        q: [&[f32]; R],
        k: &[f32],
        channels: usize,
        stride: usize,
        floor: [[f32; L]; R],
    ) -> [Block; R] {
        let mut acc = [[_mm256_setzero_ps(); G]; R];
        let (qp, kp) = (q.map(|q| q.as_ptr()), k.as_ptr());
        for ch in 0..channels {
            let o = ch * stride;
            // SAFETY: `o + L ≤ q.len()` and `o + j + L ≤ k.len()` (the caller's assertion).
            unsafe {
                let qv: [__m256; R] = std::array::from_fn(|i| _mm256_loadu_ps(qp[i].add(o)));
                for j in 0..G {
                    let kv = _mm256_loadu_ps(kp.add(o + j));
                    for i in 0..R {
                        acc[i][j] = _mm256_fmadd_ps(qv[i], kv, acc[i][j]);
                    }
                }
            }
        }
        std::array::from_fn(|i| {
            let mut sums = [[0f32; L]; G];
            let mut above = [0u8; G];
            // SAFETY: `floor[i]` and each `sums[j]` hold L = 8 floats.
            unsafe {
                let f = _mm256_loadu_ps(floor[i].as_ptr());
                for j in 0..G {
                    _mm256_storeu_ps(sums[j].as_mut_ptr(), acc[i][j]);
                    let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(acc[i][j], f);
                    above[j] = _mm256_movemask_ps(gt) as u8;
                }
            }
            Block { sums, above }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_vector_block_matches_the_plain_one() {
        let (channels, stride) = (32, 40);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut run =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let span = (channels - 1) * stride;
        let (qa, qb, k) = (run(span + L), run(span + L), run(span + L + G));
        // Floors below, between and above the sums, and −∞ (a list not yet full).
        let floor = |seed: f32| -> [f32; L] {
            std::array::from_fn(|l| {
                if l == 3 {
                    f32::NEG_INFINITY
                } else {
                    seed + l as f32 * 0.5 - 2.0
                }
            })
        };
        let floors = [floor(0.0), floor(-1.0)];
        let plain = plain_block::<2>([&qa, &qb], &k, channels, stride, floors);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            let fast = avx2::block::<2>([&qa, &qb], &k, channels, stride, floors);
            let one = avx2::block::<1>([&qb], &k, channels, stride, [floors[1]]);
            for (p, f) in plain.iter().zip(&fast).chain([(&plain[1], &one[0])]) {
                for (a, b) in p.sums.iter().flatten().zip(f.sums.iter().flatten()) {
                    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
                }
                assert_eq!(p.above, f.above);
            }
        }
        // Some sums beat their floor and some do not: the masks are tested both ways.
        let bits: u32 = plain.iter().flat_map(|b| b.above).map(u8::count_ones).sum();
        assert!(bits > 0 && bits < (2 * G * L) as u32, "{bits} bits set");
    }
}
