use reuse_vos::model::FeatureMap;
use reuse_vos::track::tracker::memory::readout::{Keys, MemoryFrame, ReadoutConfig, readout};
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

fn main() {
    let (c, h, w) = (32, 60, 107);
    let frames: Vec<MemoryFrame> = (0..8)
        .map(|i| MemoryFrame {
            keys: Keys::from_map(&map(i, c, h, w)),
            values: (0..h * w)
                .map(|j| {
                    if (j % w) > 30 && (j % w) < 70 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect(),
            global: false,
        })
        .collect();
    let refs: Vec<&MemoryFrame> = frames.iter().collect();
    let q = Keys::from_map(&map(99, c, h, w));
    let cfg = ReadoutConfig {
        top_k: 5,
        temperature: 0.1,
        radius: 12,
    };
    let mut sum = 0.0;
    let t = Instant::now();
    for _ in 0..10 {
        sum += readout(&q, &refs, &cfg).iter().sum::<f32>();
    }
    println!(
        "{:.1} ms per readout ({sum})",
        t.elapsed().as_secs_f64() * 100.0
    );
}
