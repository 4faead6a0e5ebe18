use reuse_vos::model::FeatureMap;
use reuse_vos::track::tracker::memory::readout::{
    Keys, MemoryFrame, ReadoutConfig, Window, readout,
};
use std::time::Instant;

fn map(seed: u64, c: usize, h: usize, w: usize) -> FeatureMap {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let data = (0..c * h * w)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    FeatureMap::new(c, h, w, data)
}

/// ms per readout of 8 memory frames (32 channels, 60 x 107 cells, radius 12, top 5) holding
/// an object in rows `rows` and columns `cols`.
fn time(rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> (f64, f32) {
    let (c, h, w) = (32, 60, 107);
    let frames: Vec<MemoryFrame> = (0..8)
        .map(|i| MemoryFrame {
            keys: Keys::from_map(&map(i, c, h, w)),
            values: (0..h * w)
                .map(|j| f32::from(u8::from(rows.contains(&(j / w)) && cols.contains(&(j % w)))))
                .collect(),
            window: Window::Local(12),
        })
        .collect();
    let refs: Vec<&MemoryFrame> = frames.iter().collect();
    let q = Keys::from_map(&map(99, c, h, w));
    let cfg = ReadoutConfig {
        top_k: 5,
        temperature: 0.1,
        min_radius: 0,
    };
    let mut sum = 0.0;
    let t = Instant::now();
    for _ in 0..10 {
        sum += readout(&q, &refs, &cfg).iter().sum::<f32>();
    }
    (t.elapsed().as_secs_f64() * 100.0, sum)
}

/// `cargo run --release --example readout_speed`: a large object (a band of columns) and a
/// small one (10 x 15 cells).
fn main() {
    let (large, a) = time(0..60, 31..70);
    let (small, b) = time(25..35, 40..55);
    println!("{large:.1} ms per readout, large object ({a}); {small:.1} ms, small object ({b})");
}
