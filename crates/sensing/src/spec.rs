//! Serializable operator specifications: everything needed to rebuild A exactly.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SensingError};
use crate::shape::ImageShape;

/// Which measurement matrix family (ALGORITHM.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum Family {
    /// A_ij ~ N(0, 1/M) i.i.d.
    Gaussian,
    /// A = U·diag(d)·V with d_i² ∝ κ^{-(i-1)/M} and Σ d_i² = N.
    IllConditioned {
        /// Condition parameter κ ≥ 1 (d_1²/d_M² = κ^{(M-1)/M}).
        kappa: f64,
    },
    /// A = R_L^{1/2} G R_R^{1/2} / √M with Toeplitz correlations ρ^{|i-j|} and true matrix square roots.
    Correlated {
        /// Correlation ρ in [0, 1).
        rho: f64,
    },
    /// Subsampled orthonormal 2-D DCT-II per channel with random signs.
    Dct,
    /// Subsampled orthonormal Walsh–Hadamard transform with random signs and a random permutation.
    Hadamard,
}

impl Family {
    /// Parses a command-line family name, taking κ and ρ for the families that need them.
    pub fn parse(name: &str, kappa: f64, rho: f64) -> Result<Self> {
        match name {
            "gaussian" => Ok(Self::Gaussian),
            "ill-conditioned" => Ok(Self::IllConditioned { kappa }),
            "correlated" => Ok(Self::Correlated { rho }),
            "dct" => Ok(Self::Dct),
            "hadamard" => Ok(Self::Hadamard),
            other => Err(SensingError::UnknownFamily(other.to_string())),
        }
    }

    /// The family's command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gaussian => "gaussian",
            Self::IllConditioned { .. } => "ill-conditioned",
            Self::Correlated { .. } => "correlated",
            Self::Dct => "dct",
            Self::Hadamard => "hadamard",
        }
    }

    /// True for the matrix-free operators whose A·Aᵀ is a multiple of I.
    pub fn is_structured(&self) -> bool {
        matches!(self, Self::Dct | Self::Hadamard)
    }
}

/// A complete, reproducible description of a measurement operator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatorSpec {
    /// The matrix family and its parameters.
    #[serde(flatten)]
    pub family: Family,
    /// Number of measurements M.
    pub measurements: usize,
    /// The image the operator acts on (N = C·H·W).
    pub image: ImageShape,
    /// Seed of the generator that draws the matrix, signs and row subsets.
    pub seed: u64,
}

impl OperatorSpec {
    /// N = C·H·W.
    pub fn n(&self) -> usize {
        self.image.numel()
    }

    /// Checks that the family can produce an M×N operator with these parameters.
    pub fn validate(&self) -> Result<()> {
        let (m, n) = (self.measurements, self.n());
        if m == 0 {
            return Err(SensingError::InvalidSetting(
                "the number of measurements M must be at least 1".into(),
            ));
        }
        let needs_m_le_n = !matches!(self.family, Family::Gaussian | Family::Correlated { .. });
        if needs_m_le_n && m > n {
            return Err(SensingError::InvalidSetting(format!(
                "{} operators need M ≤ N, got M = {m} > N = {n}",
                self.family.name()
            )));
        }
        match self.family {
            Family::IllConditioned { kappa } if !(kappa.is_finite() && kappa >= 1.0) => Err(
                SensingError::InvalidSetting(format!("κ must be finite and ≥ 1, got {kappa}")),
            ),
            Family::Correlated { rho } if !(rho.is_finite() && (0.0..1.0).contains(&rho)) => Err(
                SensingError::InvalidSetting(format!("ρ must lie in [0, 1), got {rho}")),
            ),
            _ => Ok(()),
        }
    }
}
