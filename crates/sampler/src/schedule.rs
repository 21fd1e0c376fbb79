//! The geometric noise schedule σ_1 > … > σ_T and the Langevin step sizes α_c = ε·(σ_c/σ_T)².

use serde::{Deserialize, Serialize};

/// An impossible schedule.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid noise schedule: {0}")]
pub struct ScheduleError(pub String);

/// A geometric noise schedule: σ_c = exp(linspace(ln σ_1, ln σ_T, T))_c.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseSchedule {
    /// σ_1, the largest level (MNIST reference: 50).
    pub sigma_begin: f64,
    /// σ_T, the smallest level (reference: 0.01).
    pub sigma_end: f64,
    /// T, the number of levels (MNIST reference: 232).
    pub levels: usize,
}

impl NoiseSchedule {
    /// A schedule, checked: 0 < σ_T < σ_1 finite and T ≥ 2 (or T = 1 with σ_1 = σ_T).
    pub fn new(sigma_begin: f64, sigma_end: f64, levels: usize) -> Result<Self, ScheduleError> {
        let finite = sigma_begin.is_finite() && sigma_end.is_finite();
        if !finite || sigma_end <= 0.0 || sigma_begin < sigma_end || levels == 0 {
            return Err(ScheduleError(format!(
                "need 0 < σ_T ≤ σ_1 and T ≥ 1, got σ_1 = {sigma_begin}, σ_T = {sigma_end}, T = {levels}"
            )));
        }
        if levels == 1 && sigma_begin != sigma_end {
            return Err(ScheduleError("a single level needs σ_1 = σ_T".into()));
        }
        Ok(Self {
            sigma_begin,
            sigma_end,
            levels,
        })
    }

    /// σ_c for c = 0 … T−1 (0-based), geometric from σ_1 down to σ_T.
    pub fn sigma(&self, c: usize) -> f64 {
        if self.levels == 1 {
            return self.sigma_begin;
        }
        let t = c as f64 / (self.levels - 1) as f64;
        (self.sigma_begin.ln() * (1.0 - t) + self.sigma_end.ln() * t).exp()
    }

    /// All levels, largest first.
    pub fn sigmas(&self) -> Vec<f64> {
        (0..self.levels).map(|c| self.sigma(c)).collect()
    }

    /// The Langevin step size α_c = ε·(σ_c/σ_T)² at level c.
    pub fn step_size(&self, c: usize, epsilon: f64) -> f64 {
        epsilon * (self.sigma(c) / self.sigma_end).powi(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_schedule_has_constant_ratio_and_exact_ends() {
        let s = NoiseSchedule::new(50.0, 0.01, 232).unwrap();
        let sig = s.sigmas();
        assert!((sig[0] - 50.0).abs() < 1e-12);
        assert!((sig[231] - 0.01).abs() < 1e-15);
        let ratio = sig[1] / sig[0];
        for w in sig.windows(2) {
            assert!((w[1] / w[0] - ratio).abs() < 1e-12);
        }
        assert!((s.step_size(231, 2e-4) - 2e-4).abs() < 1e-18);
        assert!((s.step_size(0, 2e-4) - 2e-4 * 5000.0f64.powi(2)).abs() < 1e-6);
    }

    #[test]
    fn impossible_schedules_are_rejected() {
        assert!(NoiseSchedule::new(0.01, 50.0, 10).is_err());
        assert!(NoiseSchedule::new(50.0, 0.0, 10).is_err());
        assert!(NoiseSchedule::new(50.0, 0.01, 0).is_err());
        assert!(NoiseSchedule::new(f64::NAN, 0.01, 10).is_err());
        assert!(NoiseSchedule::new(1.0, 1.0, 1).is_ok());
    }
}
