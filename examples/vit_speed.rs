//! ms per frame of the DINOv2 graph against the source file run as it is (224 x 224, 12 layers):
//! `cargo run --release --example vit_speed [height width layers]`.

use reuse_vos::engine::ort::vit::{OrtVit, source_tokens};
use reuse_vos::model::FeatureMap;
use reuse_vos::model::vit::{VitShape, source};
use std::sync::Arc;
use std::time::Instant;

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..3 {
        f();
    }
    t.elapsed().as_secs_f64() * 1000.0 / 3.0
}

fn main() -> reuse_vos::Result<()> {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let (h, w, layers) = match a.as_slice() {
        [h, w, l] => (*h, *w, *l),
        _ => (420, 742, 8),
    };
    let path = source::locate(None)?;
    let bytes = source::read_checked(&path)?;
    let weights = Arc::new(source::load(&path)?);
    let mut ours = OrtVit::new(weights, 2)?;
    let img = |h, w| FeatureMap::new(3, h, w, vec![0.1; 3 * h * w]);
    let small = img(224, 224);
    let s224 = VitShape {
        height: 224,
        width: 224,
        layers: 12,
    };
    let mine = time(|| drop(ours.tokens(&small, s224)));
    let theirs = time(|| drop(source_tokens(&bytes, &small, 12)));
    println!(
        "224x224, 12 layers: ours {mine:.1} ms, source file {theirs:.1} ms (session build included)"
    );
    let big = img(h, w);
    let s = VitShape {
        height: h,
        width: w,
        layers,
    };
    let t = time(|| drop(ours.tokens(&big, s)));
    println!("{h}x{w}, {layers} layers: ours {t:.1} ms");
    Ok(())
}
