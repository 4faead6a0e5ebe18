//! The online target model of FRTM, per object, on the stride-16 features: a 1×1 projection
//! (no bias) and a 3×3 filter to one score channel (no bias), learned on the first frame by
//! Gauss–Newton/CG on a weighted least-squares loss with Tikhonov regularisation, then refined
//! (filter only) every few frames from a memory of the frames it tracked.
//!
//! Unlike the reference, which keeps 80 full-resolution labels per object, samples live at the
//! feature resolution: each s16 pixel stands for the stride² image pixels it covers (its
//! residual is scaled by the stride, so the reference's regularisation keeps its meaning), and
//! the memory holds projected features, labels and weights at s16 — a few MB per object,
//! constant in video length.

pub mod augment;
pub mod conv;
pub mod memory;
pub mod problem;
pub mod solver;

use crate::model::FeatureMap;
use memory::Memory;
use ndarray::{Array2, ArrayView2};
use problem::TargetProblem;
use rand::{Rng, SeedableRng};

/// Hyper-parameters (FRTM's values unless said otherwise).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TargetConfig {
    /// Channels of the projection (FRTM: 96 at inference, 32 in its training cache).
    pub channels: usize,
    /// CG iterations of each GN step at initialisation (FRTM: 5,10,10,10,10).
    pub init_iters: Vec<usize>,
    /// CG iterations of the single GN step of a filter update (FRTM: 10; fast: 5).
    pub update_iters: usize,
    /// Tikhonov weights λ of the projection and the filter (residual λ·W).
    pub reg: [f32; 2],
    /// Constant preconditioner of the projection and the filter blocks.
    pub precond: [f32; 2],
    /// Regularisation of the filter-only problem (FRTM: 1e-2 for both).
    pub filter_reg: f32,
    pub filter_precond: f32,
    /// Samples kept for updates (FRTM: 80 full-resolution maps; here s16 maps).
    pub memory: usize,
    /// Weight of each new memory sample relative to the previous one: 1/(1 − lr).
    pub learning_rate: f32,
    /// Refine the filter every this many tracked frames (`usize::MAX`: never).
    pub update_every: usize,
    /// Keep the given mask's samples in the memory for the whole video.
    #[serde(default)]
    pub keep_given: bool,
    /// Hinge pixel weighting: foreground gets at least this share of the total weight.
    pub hinge: f32,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Which backbone features the model reads.
    #[serde(default)]
    pub input: TargetInput,
}

/// The features a target model reads, at stride 16.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
pub enum TargetInput {
    /// The stride-16 features alone (96 channels).
    #[default]
    S16,
    /// Stride 16 and stride 32 upsampled to it (96 + 320 channels): more semantic.
    S16S32,
}

impl TargetInput {
    /// The model's input map from the two deep levels.
    pub fn map(self, s16: &FeatureMap, s32: &FeatureMap) -> FeatureMap {
        match self {
            TargetInput::S16 => s16.clone(),
            TargetInput::S16S32 => {
                let (h, w) = (s16.height, s16.width);
                let mut data = Vec::with_capacity((s16.channels + s32.channels) * h * w);
                data.extend_from_slice(&s16.data);
                // Nearest 2× upsampling: every s16 cell reads the s32 cell covering it.
                for c in 0..s32.channels {
                    for y in 0..h {
                        let sy = (y / 2).min(s32.height - 1);
                        for x in 0..w {
                            data.push(s32.at(c, sy, (x / 2).min(s32.width - 1)));
                        }
                    }
                }
                FeatureMap::new(s16.channels + s32.channels, h, w, data)
            }
        }
    }
}

impl TargetConfig {
    /// Whether tracked frames ever refine the filter.
    pub fn updates(&self) -> bool {
        self.update_every != usize::MAX
    }
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            channels: 32,
            init_iters: vec![5, 10, 10, 10, 10],
            update_iters: 10,
            reg: [1e-4, 1e-2],
            precond: [1e-4, 1e-2],
            filter_reg: 1e-2,
            filter_precond: 1e-2,
            memory: 20,
            learning_rate: 0.1,
            // Never: cross-validated on the 30 DAVIS-2016 train sequences, refining every 8
            // frames scored J&F 72.2 against 73.3, and drifted onto the background of a looped
            // video (J 0.66 → 0.47 over 20 passes against a flat 0.67).
            update_every: usize::MAX,
            keep_given: false,
            hinge: 0.1,
            seed: 0,
            input: TargetInput::S16,
        }
    }
}

/// One training sample at the feature resolution.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Features, channels × (h·w): backbone s16 features, or projected ones in the memory.
    pub features: Array2<f32>,
    /// Target in [0, 1], h·w.
    pub label: Vec<f32>,
    /// Per-pixel weight (already square-rooted, it multiplies the residual), h·w.
    pub weight: Vec<f32>,
    pub height: usize,
    pub width: usize,
}

/// FRTM's "hinge" pixel weights: if the object covers a fraction `af` of the image below `tf`,
/// its pixels are up-weighted so that they carry `tf` of the total weight.
pub fn hinge_weights(label: &[f32], area_fraction: f32, tf: f32) -> Vec<f32> {
    let af = area_fraction.clamp(1e-6, 1.0 - 1e-6);
    let tf = tf.max(af);
    let (wf, wb) = (tf / af, (1.0 - tf) / (1.0 - af));
    label
        .iter()
        .map(|&y| (wf * y + wb * (1.0 - y)).sqrt())
        .collect()
}

/// A full-resolution mask (1 = object) averaged onto an `h`×`w` grid: each cell is the object
/// fraction of the image pixels whose centres fall in it.
pub fn area_downsample(mask: &[f32], mw: usize, mh: usize, w: usize, h: usize) -> Vec<f32> {
    let mut sum = vec![0f32; w * h];
    let mut count = vec![0u32; w * h];
    // Each column's cell, worked out once rather than per row.
    let columns: Vec<usize> = (0..mw).map(|x| (x * w / mw).min(w - 1)).collect();
    for (y, row) in mask.chunks_exact(mw.max(1)).take(mh).enumerate() {
        let cy = (y * h / mh).min(h - 1);
        let (sum, count) = (&mut sum[cy * w..], &mut count[cy * w..]);
        for (&cx, &v) in columns.iter().zip(row) {
            sum[cx] += v;
            count[cx] += 1;
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(s, &n)| if n == 0 { 0.0 } else { s / n as f32 })
        .collect()
}

/// Features of a map as channels × pixels.
pub fn as_matrix(map: &FeatureMap) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((map.channels, map.height * map.width), &map.data)
        .expect("feature map shape")
}

/// What a solve did: the loss before and after each GN step.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SolveReport {
    pub losses: Vec<f64>,
}

/// One object's target model.
#[derive(Clone, Debug)]
pub struct TargetModel {
    /// channels × input channels.
    pub projection: Array2<f32>,
    /// channels × 3 × 3.
    pub filter: Vec<f32>,
    memory: Memory,
    frames: usize,
    config: TargetConfig,
}

impl TargetModel {
    /// Learns projection and filter jointly on the first-frame samples (the first one is the
    /// real frame and weighs twice as much as each augmented one), then the filter alone on the
    /// projected samples, which start the memory.
    pub fn init(
        samples: &[Sample],
        config: &TargetConfig,
        data_scale: f32,
    ) -> (TargetModel, SolveReport) {
        let cin = samples[0].features.nrows();
        let c = config.channels;
        // PyTorch's default (Kaiming-uniform) init bounds, seeded.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
        let bp = 1.0 / (cin as f32).sqrt();
        let bf = 1.0 / ((c * 9) as f32).sqrt();
        let mut x: Vec<f32> = (0..c * cin).map(|_| rng.random_range(-bp..bp)).collect();
        x.extend((0..c * 9).map(|_| rng.random_range(-bf..bf)));
        let mut gammas = vec![1.0f32; samples.len()];
        gammas[0] = 2.0;
        let total: f32 = gammas.iter().sum();
        gammas.iter_mut().for_each(|g| *g /= total);
        let mut joint = TargetProblem::joint(samples, &gammas, cin, c, config, data_scale);
        let mut losses = solver::gauss_newton_cg(&mut joint, &mut x, &config.init_iters);
        let projection = Array2::from_shape_vec((c, cin), x[..c * cin].to_vec()).expect("shape");
        let filter = x[c * cin..].to_vec();
        let mut memory =
            Memory::new(config.memory, config.learning_rate).keeping_initial(config.keep_given);
        for (s, &g) in samples.iter().zip(&gammas) {
            memory.push_initial(
                Sample {
                    features: projection.dot(&s.features),
                    ..s.clone()
                },
                g,
            );
        }
        let mut model = TargetModel {
            projection,
            filter,
            memory,
            frames: 0,
            config: config.clone(),
        };
        let refine = model.refine(data_scale);
        losses.extend(refine);
        (model, SolveReport { losses })
    }

    /// One GN step on the filter alone over the memory.
    fn refine(&mut self, data_scale: f32) -> Vec<f64> {
        let (samples, gammas) = self.memory.active();
        let mut problem = TargetProblem::filter_only(
            &samples,
            &gammas,
            self.config.channels,
            &self.config,
            data_scale,
        );
        let mut f = self.filter.clone();
        let losses = solver::gauss_newton_cg(&mut problem, &mut f, &[self.config.update_iters]);
        self.filter = f;
        losses
    }

    /// Projected features of a stride-16 map (channels × pixels).
    pub fn project(&self, x: &FeatureMap) -> Array2<f32> {
        self.projection.dot(&as_matrix(x))
    }

    /// The raw score map (not a probability) of projected features.
    pub fn score_projected(&self, z: &Array2<f32>, h: usize, w: usize) -> FeatureMap {
        let z = z.as_standard_layout();
        let s = conv::conv3(
            &self.filter,
            z.as_slice().expect("contiguous"),
            self.config.channels,
            h,
            w,
        );
        FeatureMap::new(1, h, w, s)
    }

    /// The raw score map of a stride-16 feature map.
    pub fn score(&self, x: &FeatureMap) -> FeatureMap {
        self.score_projected(&self.project(x), x.height, x.width)
    }

    /// Adds a tracked frame to the memory (its projected features and the object's soft mask
    /// at s16) and refines the filter every `update_every` frames. Frames where the object
    /// covers fewer than 10 image pixels are not added. Returns whether the filter was refined.
    pub fn update(
        &mut self,
        z: Array2<f32>,
        label: Vec<f32>,
        (h, w): (usize, usize),
        area_pixels: usize,
        image_pixels: usize,
        data_scale: f32,
    ) -> bool {
        self.frames += 1;
        if area_pixels >= 10 {
            let binary: Vec<f32> = label
                .iter()
                .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
                .collect();
            let weight = hinge_weights(
                &binary,
                area_pixels as f32 / image_pixels as f32,
                self.config.hinge,
            );
            self.memory.push(Sample {
                features: z,
                label,
                weight,
                height: h,
                width: w,
            });
        }
        if self.frames.is_multiple_of(self.config.update_every.max(1)) {
            self.refine(data_scale);
            true
        } else {
            false
        }
    }

    /// The settings it was fitted with.
    pub fn config(&self) -> &TargetConfig {
        &self.config
    }

    /// Bytes held by the memory.
    pub fn memory_bytes(&self) -> usize {
        self.memory.bytes()
    }
}
