//! The target model's solver: exact on a linear problem, descending on the real one.

mod common;

use ndarray::Array2;
use reuse_vos::engine::BackboneEngine;
use reuse_vos::engine::burn::BurnBackbone;
use reuse_vos::io::{Frame, Mask};
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::model::online::conv::conv3;
use reuse_vos::model::online::problem::TargetProblem;
use reuse_vos::model::online::solver::gauss_newton_cg;
use reuse_vos::model::online::{
    Sample, TargetConfig, TargetModel, area_downsample, as_matrix, hinge_weights,
};

fn pseudo(i: usize, k: f32) -> f32 {
    ((i as f32 + 1.0) * k).sin()
}

/// Solves the normal equations (AᵀA) x = Aᵀb by Gaussian elimination in f64.
#[allow(clippy::needless_range_loop)]
fn normal_solve(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = a[0].len();
    let mut m = vec![vec![0f64; n + 1]; n];
    for (row, &bi) in a.iter().zip(b) {
        for i in 0..n {
            for j in 0..n {
                m[i][j] += row[i] * row[j];
            }
            m[i][n] += row[i] * bi;
        }
    }
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))
            .unwrap();
        m.swap(col, piv);
        for r in 0..n {
            if r != col {
                let f = m[r][col] / m[col][col];
                for c in col..=n {
                    m[r][c] -= f * m[col][c];
                }
            }
        }
    }
    (0..n).map(|i| m[i][n] / m[i][i]).collect()
}

#[test]
fn filter_solve_matches_closed_form_least_squares() {
    let (c, h, w) = (2usize, 4usize, 5usize);
    let n = h * w;
    let samples: Vec<Sample> = (0..2)
        .map(|k| Sample {
            features: Array2::from_shape_fn((c, n), |(ch, i)| pseudo(k * 100 + ch * n + i, 0.37)),
            label: (0..n)
                .map(|i| if pseudo(i + k, 1.7) > 0.0 { 1.0 } else { 0.0 })
                .collect(),
            weight: (0..n)
                .map(|i| 1.0 + 0.5 * pseudo(i + 7 * k, 0.9).abs())
                .collect(),
            height: h,
            width: w,
        })
        .collect();
    let gammas = [0.75f32, 0.25];
    let cfg = TargetConfig::default();
    let scale = 2.0f32;
    let refs: Vec<&Sample> = samples.iter().collect();
    let mut problem = TargetProblem::filter_only(&refs, &gammas, c, &cfg, scale);
    let mut f = vec![0f32; c * 9];
    // A linear problem: one GN step is the exact solve up to CG convergence in f32; a second
    // step refines what f32 rounding left.
    let losses = gauss_newton_cg(&mut problem, &mut f, &[40, 40]);

    // The same problem written out: rows a_k w_i (A_k f)_i = a_k w_i y_i, and λ f = 0.
    let mut rows = Vec::new();
    let mut rhs = Vec::new();
    for (s, g) in samples.iter().zip(gammas) {
        let a = (scale * g.sqrt()) as f64;
        let z: Vec<f32> = s.features.iter().copied().collect();
        let columns: Vec<Vec<f32>> = (0..c * 9)
            .map(|j| {
                let mut e = vec![0f32; c * 9];
                e[j] = 1.0;
                conv3(&e, &z, c, h, w)
            })
            .collect();
        for i in 0..n {
            let wi = s.weight[i] as f64;
            rows.push(
                columns
                    .iter()
                    .map(|col| a * wi * col[i] as f64)
                    .collect::<Vec<f64>>(),
            );
            rhs.push(a * wi * s.label[i] as f64);
        }
    }
    for j in 0..c * 9 {
        let mut row = vec![0f64; c * 9];
        row[j] = cfg.filter_reg as f64;
        rows.push(row);
        rhs.push(0.0);
    }
    let exact = normal_solve(&rows, &rhs);
    for (got, want) in f.iter().zip(&exact) {
        assert!(
            (*got as f64 - want).abs() < 1e-3 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
    assert!(losses[1] < losses[0]);
}

#[test]
fn target_model_learns_the_object_on_a_real_frame() {
    let seq = common::davis2016();
    let frame = Frame::load(&seq.join("JPEGImages/480p/bear/00000.jpg")).unwrap();
    let mask = Mask::read_binary(&seq.join("Annotations/480p/bear/00000.png")).unwrap();
    let spec = BackboneSpec::embedded().unwrap();
    let mut net = BurnBackbone::new(&spec);
    let s16 = net.pyramid(&normalize(&frame)).unwrap().s16;
    let (h, w) = (s16.height, s16.width);
    let full: Vec<f32> = mask.ids.iter().map(|&v| v as f32).collect();
    let label = area_downsample(&full, 854, 480, w, h);
    let area = mask.area(1);
    let binary: Vec<f32> = label
        .iter()
        .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
        .collect();
    let sample = Sample {
        features: as_matrix(&s16).to_owned(),
        weight: hinge_weights(&binary, area as f32 / (854.0 * 480.0), 0.1),
        label: label.clone(),
        height: h,
        width: w,
    };
    let cfg = TargetConfig::default();
    let (model, report) = TargetModel::init(&[sample], &cfg, 16.0);
    let l = &report.losses;
    assert!(
        l[5] < 0.2 * l[0],
        "joint GN did not reduce the loss enough: {l:?}"
    );
    for pair in l[..6].windows(2) {
        assert!(pair[1] <= pair[0] * 1.001, "loss went up: {l:?}");
    }
    let score = model.score(&s16);
    let (mut fg, mut nf, mut bg, mut nb) = (0f32, 0, 0f32, 0);
    for (s, y) in score.data.iter().zip(&label) {
        if *y > 0.9 {
            fg += s;
            nf += 1;
        } else if *y < 0.1 {
            bg += s;
            nb += 1;
        }
    }
    let (fg, bg) = (fg / nf as f32, bg / nb as f32);
    assert!(
        fg > 0.6 && bg.abs() < 0.15,
        "object score {fg}, background {bg}"
    );
    // Same seed, same model.
    let again = TargetModel::init(
        &[Sample {
            features: as_matrix(&s16).to_owned(),
            weight: hinge_weights(&binary, area as f32 / (854.0 * 480.0), 0.1),
            label,
            height: h,
            width: w,
        }],
        &cfg,
        16.0,
    )
    .0;
    assert_eq!(again.filter, model.filter);
}
