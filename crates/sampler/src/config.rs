//! Settings of annealed Langevin sampling (ALGORITHM.md §2), with the MNIST reference values as defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SamplerError};

/// How the likelihood score is weighted in each Langevin step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LikelihoodWeight {
    /// QCS-SGM: a fixed λ (reference 1).
    Fixed(f64),
    /// QCS-SGM+: λ_step = λ·‖s_θ‖/‖∇ log p‖ (Frobenius norms over the whole batch; the ratio is 1 when the
    /// likelihood score is 0). Reference λ = 0.5 for MNIST, 0.3 for CIFAR-10 and CelebA.
    NormRatio(f64),
}

impl LikelihoodWeight {
    /// λ.
    pub fn lambda(&self) -> f64 {
        match *self {
            Self::Fixed(lambda) | Self::NormRatio(lambda) => lambda,
        }
    }
}

/// How the step size α_c of a conditioned run is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepControl {
    /// α_c = ε·(σ_c/σ_T)² whatever the likelihood (the reference). With that step the prior alone already
    /// sits at the stability limit of Langevin dynamics (α_c/σ_c² = ε/σ_T² = 2 at the reference settings), so
    /// a likelihood that pulls from both sides (linear or Q-bit measurements, whose exact score grows with
    /// the distance to the bin) makes the chain diverge within a few levels.
    Reference,
    /// α_c/(1 + σ_c²·λ·L_c), L_c the likelihood's curvature bound
    /// ([`qcs_likelihood::LikelihoodScore::curvature`]): the step stays at the prior's own ratio to the
    /// total curvature 1/σ_c² + λ·L_c, so the likelihood never pushes the chain past the stability limit.
    /// Scores without a bound (QCS-SGM+) and unconditional runs keep the reference step.
    Curvature,
    /// The same stability, direction by direction: the step shrinks by 1 + σ_c²·λ·h_c·λ_i along the i-th
    /// right singular vector of A (λ_i the eigenvalues of A·Aᵀ, h_c = L_c/‖A‖²) and keeps the prior's full
    /// step in A's null space (a constant preconditioner per level; `precondition` module). Costs two more
    /// applications of A and Aᵀ and, for a dense A, four [B, M]×[M, M] products per step and the
    /// eigendecomposition of A·Aᵀ once per operator (as QCS-SGM+ needs). The default: on the ten shipped
    /// digits (M = 200, 116 × 3) it gave +0.25 dB at 2 bits, +1.05 dB at 3 bits and +0.62 dB for linear
    /// measurements over [`StepControl::Curvature`].
    #[default]
    Preconditioned,
}

/// Which of the prior's T levels the sampler visits (always including the last one, σ_T).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "select", rename_all = "kebab-case")]
pub enum LevelSubset {
    /// Every level 1 … T (the reference).
    All,
    /// Every `stride`-th level counted back from the last: T, T − stride, T − 2·stride, … ≥ 1.
    Stride {
        /// Distance between visited levels (≥ 1; 1 is `All`).
        stride: usize,
    },
    /// `count` evenly spaced levels from the first to the last (rounded to the nearest level; `count` = 1
    /// visits σ_T only).
    Count {
        /// Number of levels visited, 1 ≤ count ≤ T.
        count: usize,
    },
}

impl LevelSubset {
    /// The 0-based indices of the visited levels among `total` levels, in increasing order (decreasing σ).
    pub fn select(&self, total: usize) -> Result<Vec<usize>> {
        if total == 0 {
            return Err(SamplerError::InvalidLevels(
                "the prior has no levels".into(),
            ));
        }
        let last = total - 1;
        match *self {
            Self::All => Ok((0..total).collect()),
            Self::Stride { stride } if stride >= 1 => Ok((0..=last / stride)
                .rev()
                .map(|k| last - k * stride)
                .collect()),
            Self::Count { count } if (1..=total).contains(&count) => {
                if count == 1 {
                    return Ok(vec![last]);
                }
                let gaps = count - 1;
                Ok((0..count).map(|i| (i * last + gaps / 2) / gaps).collect())
            }
            other => Err(SamplerError::InvalidConfig(format!(
                "{other:?} cannot select levels among {total}"
            ))),
        }
    }
}

/// Annealed Langevin settings. The noise levels σ_1 > … > σ_T come from the prior (MNIST reference: T = 232
/// levels from σ_1 = 50 to σ_T = 0.01); everything else is here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LangevinConfig {
    /// K, Langevin steps per level (reference 5).
    pub steps_per_level: usize,
    /// ε of the step size α_c = ε·(σ_c/σ_T)² (reference 2e-4 for MNIST, CIFAR-10 and CelebA).
    pub epsilon: f64,
    /// The likelihood weight λ (reference: `Fixed(1)`, QCS-SGM).
    pub weight: LikelihoodWeight,
    /// Which levels are visited (reference: all).
    pub levels: LevelSubset,
    /// How the step size follows the likelihood (default: curvature-limited per direction; the reference
    /// step diverges with linear and Q-bit measurements).
    pub step_control: StepControl,
    /// Whether to finish with the denoising step x ← x + σ_T²·s(x, T) (one more network evaluation;
    /// reference: off).
    pub final_denoise: bool,
    /// Independent chains per image (≥ 1; default 1). With more than one, the posterior mean and per-pixel
    /// spread are estimated over them.
    pub chains: usize,
    /// Seed of the host generators that draw the start and every step's noise (default 0).
    pub seed: u64,
    /// The index, in the whole run, of the first image of this call (default 0). Image i of the call draws
    /// its start and noise from the streams of image `first_image + i`, so a run split into batches draws
    /// for every image what one call over all of them would.
    pub first_image: u64,
}

impl Default for LangevinConfig {
    fn default() -> Self {
        Self {
            steps_per_level: 5,
            epsilon: 2e-4,
            weight: LikelihoodWeight::Fixed(1.0),
            levels: LevelSubset::All,
            step_control: StepControl::Preconditioned,
            final_denoise: false,
            chains: 1,
            seed: 0,
            first_image: 0,
        }
    }
}

impl LangevinConfig {
    /// Checks every setting that does not depend on the prior.
    pub fn validate(&self) -> Result<()> {
        let lambda = self.weight.lambda();
        let problem = if self.steps_per_level == 0 {
            Some("steps_per_level must be at least 1".to_string())
        } else if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            Some(format!(
                "ε must be positive and finite, got {}",
                self.epsilon
            ))
        } else if !(lambda.is_finite() && lambda >= 0.0) {
            Some(format!("λ must be finite and ≥ 0, got {lambda}"))
        } else if self.chains == 0 {
            Some("chains must be at least 1".to_string())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(SamplerError::InvalidConfig(p)))
    }

    /// Network evaluations one run makes when the prior has `total` levels: visited levels × K, plus one for
    /// the final denoising step.
    pub fn nfe(&self, total: usize) -> Result<usize> {
        let visited = self.levels.select(total)?.len();
        Ok(visited * self.steps_per_level + usize::from(self.final_denoise))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_mnist_reference_settings() {
        let c = LangevinConfig::default();
        assert_eq!(c.steps_per_level, 5);
        assert_eq!(c.epsilon, 2e-4);
        assert_eq!(c.weight, LikelihoodWeight::Fixed(1.0));
        assert_eq!(c.levels, LevelSubset::All);
        assert_eq!(c.nfe(232).unwrap(), 1160);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn config_round_trips_through_json_and_fills_defaults() {
        let c = LangevinConfig {
            weight: LikelihoodWeight::NormRatio(0.5),
            levels: LevelSubset::Count { count: 50 },
            chains: 4,
            ..LangevinConfig::default()
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<LangevinConfig>(&text).unwrap(), c);
        let partial: LangevinConfig = serde_json::from_str(r#"{"chains": 3}"#).unwrap();
        assert_eq!(partial.chains, 3);
        assert_eq!(partial.steps_per_level, 5);
        assert!(serde_json::from_str::<LangevinConfig>(r#"{"chain": 3}"#).is_err());
    }

    #[test]
    fn impossible_settings_are_rejected() {
        let bad = [
            LangevinConfig {
                steps_per_level: 0,
                ..Default::default()
            },
            LangevinConfig {
                epsilon: -1.0,
                ..Default::default()
            },
            LangevinConfig {
                weight: LikelihoodWeight::NormRatio(f64::NAN),
                ..Default::default()
            },
            LangevinConfig {
                chains: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        assert!(LevelSubset::Count { count: 11 }.select(10).is_err());
        assert!(LevelSubset::Count { count: 0 }.select(10).is_err());
        assert!(LevelSubset::Stride { stride: 0 }.select(10).is_err());
    }

    #[test]
    fn level_subsets_are_evenly_spaced_and_end_at_the_last_level() {
        assert_eq!(LevelSubset::All.select(4).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(
            LevelSubset::Stride { stride: 3 }.select(10).unwrap(),
            vec![0, 3, 6, 9]
        );
        assert_eq!(
            LevelSubset::Stride { stride: 4 }.select(10).unwrap(),
            vec![1, 5, 9]
        );
        assert_eq!(
            LevelSubset::Count { count: 5 }.select(9).unwrap(),
            vec![0, 2, 4, 6, 8]
        );
        assert_eq!(LevelSubset::Count { count: 1 }.select(9).unwrap(), vec![8]);
        assert_eq!(
            LevelSubset::Count { count: 9 }.select(9).unwrap(),
            (0..9).collect::<Vec<_>>()
        );
        let picked = LevelSubset::Count { count: 58 }.select(232).unwrap();
        assert_eq!(picked.len(), 58);
        assert_eq!((picked[0], picked[57]), (0, 231));
        assert!(picked.windows(2).all(|w| (4..=5).contains(&(w[1] - w[0]))));
    }
}
