//! Region reuse in the backbone's first blocks (SpVOS, `--sparse-threshold`): on a clip shot
//! from a still camera — a DAVIS object moving over a fixed DAVIS background — only the tiles
//! around the object run again, the features equal the dense ones, and the masks are the same.

mod common;

use reuse_vos::engine::sparse::SparseBackbone;
use reuse_vos::engine::{BackboneEngine, backbone, resolve};
use reuse_vos::io::{Frame, Mask};
use reuse_vos::model::Model;
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::track::gate::{GatePolicy, GateSettings};
use reuse_vos::track::{Session, TrackerConfig};

fn load(seq: &str) -> (Frame, Mask) {
    let root = common::davis2016();
    let f = Frame::load(&root.join(format!("JPEGImages/480p/{seq}/00000.jpg"))).unwrap();
    let m = Mask::read_binary(&root.join(format!("Annotations/480p/{seq}/00000.png"))).unwrap();
    (f, m)
}

/// Eight frames of `size` from a still camera: a dancer at a fifth of her size walking 8 px a
/// frame from `start` over the bear's background, and her masks.
fn still_camera_clip(size: (u32, u32), start: (i64, i64)) -> Vec<(Frame, Mask)> {
    let (background, _) = load("bear");
    let background = background.resized(size.0, size.1).unwrap();
    let (object, mask) = load("dance-jump");
    (0..8)
        .map(|i| common::paste(&object, &mask, 0.2, &background, (start.0 + 8 * i, start.1)))
        .collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let max = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / max
}

/// Dense and sparse low features of every frame of `clip` agree; the shares of the frame the
/// sparse backbone ran on.
fn compare(clip: &[(Frame, Mask)]) -> Vec<f64> {
    let spec = BackboneSpec::embedded().unwrap();
    let kind = resolve(None).unwrap();
    let mut dense = backbone(&spec, Some(kind), None, 2).unwrap();
    let mut sparse = SparseBackbone::new(backbone(&spec, Some(kind), None, 2).unwrap(), 0.0);
    let mut shares = Vec::new();
    for (frame, _) in clip {
        let image = normalize(frame);
        let (want, got) = (dense.low(&image).unwrap(), sparse.low(&image).unwrap());
        assert!(max_rel(&want.s4.data, &got.s4.data) < 1e-5);
        assert!(max_rel(&want.s8.data, &got.s8.data) < 1e-5);
        shares.push(sparse.low_share());
    }
    // The same frame again: nothing runs, the stored features come back.
    let last = normalize(&clip[clip.len() - 1].0);
    let again = sparse.low(&last).unwrap();
    assert_eq!(sparse.low_share(), 0.0);
    assert!(max_rel(&dense.low(&last).unwrap().s8.data, &again.s8.data) < 1e-5);
    shares
}

#[test]
fn only_the_tiles_around_a_moving_object_run_again_and_match_the_dense_features() {
    let shares = compare(&still_camera_clip((640, 360), (80, 120)));
    assert_eq!(shares[0], 1.0, "the first frame runs densely");
    // The dancer's box and the receptive field's halos: well under the whole frame.
    assert!(
        shares[1..].iter().all(|&s| s > 0.0 && s < 0.6),
        "{shares:?}"
    );
}

#[test]
fn a_change_in_the_corner_of_a_frame_of_odd_size_is_pasted_where_it_belongs() {
    // 630×350: neither side a multiple of 8 or 16; the dancer walks out of the bottom-right.
    let shares = compare(&still_camera_clip((630, 350), (460, 254)));
    assert!(
        shares[1..].iter().all(|&s| s > 0.0 && s < 0.6),
        "{shares:?}"
    );
}

fn track(sparse: Option<f32>, clip: &[(Frame, Mask)]) -> (Vec<Mask>, u64) {
    let model = Model::embedded_for("fusion").unwrap();
    let config = TrackerConfig {
        tracker: reuse_vos::track::TrackerKind::Fusion,
        engine: Some(resolve(None).unwrap()),
        gate: GateSettings {
            policy: GatePolicy::Never,
            ..Default::default()
        },
        sparse,
        ..Default::default()
    };
    let mut s = Session::new(&model, config).unwrap();
    s.add_mask(0, clip[0].1.clone()).unwrap();
    let (mut masks, mut macs) = (Vec::new(), 0);
    for (frame, _) in clip {
        let out = s.push(frame).unwrap();
        masks.push(out.mask);
        macs += out.macs;
    }
    (masks, macs)
}

#[test]
fn the_masks_are_the_dense_ones_for_fewer_operations() {
    let clip = still_camera_clip((640, 360), (80, 120));
    let (dense, dense_macs) = track(None, &clip);
    let (sparse, sparse_macs) = track(Some(0.0), &clip);
    for (i, (a, b)) in dense.iter().zip(&sparse).enumerate() {
        let differ = a.ids.iter().zip(&b.ids).filter(|(x, y)| x != y).count();
        assert!(differ <= 2, "frame {i}: {differ} pixels differ");
    }
    assert!(
        (sparse_macs as f64) < 0.9 * dense_macs as f64,
        "{sparse_macs} against {dense_macs}"
    );
}
