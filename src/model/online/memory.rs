//! The target model's sample memory (FRTM's): a fixed number of slots; a new sample replaces
//! the lowest-weighted one, and each new sample weighs 1/(1 − lr) times the previous one, so
//! the memory forgets geometrically.

use super::Sample;

#[derive(Clone, Debug)]
pub struct Memory {
    slots: Vec<Option<Sample>>,
    weights: Vec<f32>,
    lr: f32,
    previous: Option<usize>,
    /// Slots holding the given mask's samples (the first ones filled).
    initial: usize,
    /// Never evict the given mask's samples (they only lose weight relative to new ones).
    keep_initial: bool,
}

impl Memory {
    pub fn new(capacity: usize, lr: f32) -> Memory {
        Memory {
            slots: vec![None; capacity.max(1)],
            weights: vec![0.0; capacity.max(1)],
            lr,
            previous: None,
            initial: 0,
            keep_initial: false,
        }
    }

    /// Keeps the given mask's samples for the whole video instead of letting new samples
    /// replace them once they weigh least (FRTM evicts them).
    pub fn keeping_initial(mut self, keep: bool) -> Memory {
        self.keep_initial = keep;
        self
    }

    /// Places an initial sample with a given weight (weights are used as given).
    pub fn push_initial(&mut self, sample: Sample, weight: f32) {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            self.slots[i] = Some(sample);
            self.weights[i] = weight;
            self.initial = self.initial.max(i + 1);
        }
    }

    /// Inserts a tracked frame's sample.
    pub fn push(&mut self, sample: Sample) {
        let skip = if self.keep_initial && self.initial < self.slots.len() {
            self.initial
        } else {
            0
        };
        let r = self
            .weights
            .iter()
            .enumerate()
            .skip(skip)
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        match self.previous {
            None => {
                self.weights.iter_mut().for_each(|w| *w /= 1.0 - self.lr);
                self.weights[r] = self.lr;
            }
            Some(p) => self.weights[r] = self.weights[p] / (1.0 - self.lr),
        }
        let total: f32 = self.weights.iter().sum();
        self.weights.iter_mut().for_each(|w| *w /= total);
        self.slots[r] = Some(sample);
        self.previous = Some(r);
    }

    /// The samples with a positive weight, and their weights.
    pub fn active(&self) -> (Vec<&Sample>, Vec<f32>) {
        self.slots
            .iter()
            .zip(&self.weights)
            .filter_map(|(s, &w)| s.as_ref().filter(|_| w > 0.0).map(|s| (s, w)))
            .unzip()
    }

    pub fn bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| 4 * (s.features.len() + s.label.len() + s.weight.len()))
            .sum()
    }
}
