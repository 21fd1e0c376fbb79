//! The cells of `qcs eval`: every list flag parsed and checked before any work starts, then their cartesian
//! product, grouped by measurement setting so that each setting is simulated once.

use anyhow::{bail, Context, Result};
use qcs_likelihood::Numerics;
use qcs_sensing::{Family, ImageShape, OperatorSpec};

use crate::args::EvalArgs;
use crate::config::Config;

/// A reconstruction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Annealed Langevin with the QCS-SGM closed-form likelihood.
    QcsSgm,
    /// Annealed Langevin with the QCS-SGM+ expectation-propagation likelihood.
    QcsSgmPlus,
    /// Binary iterative hard thresholding in the DCT basis.
    Biht,
    /// Normalised back-projection.
    BackProjection,
}

impl Method {
    const ALL: [Self; 4] = [
        Self::QcsSgm,
        Self::QcsSgmPlus,
        Self::Biht,
        Self::BackProjection,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::QcsSgm => "qcs-sgm",
            Self::QcsSgmPlus => "qcs-sgm-plus",
            Self::Biht => "biht",
            Self::BackProjection => "back-projection",
        }
    }

    /// The method of a command-line name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether it samples with the score network (and so has a schedule and an NFE).
    pub fn uses_prior(self) -> bool {
        matches!(self, Self::QcsSgm | Self::QcsSgmPlus)
    }
}

/// An annealed Langevin schedule: levels × steps per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Noise levels visited.
    pub levels: usize,
    /// Langevin steps per level K.
    pub steps_per_level: usize,
}

/// One row of results: a method with all its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The method.
    pub method: Method,
    /// The likelihood numerics: QCS-SGM's stable or reference formula, `Some(Reference)` for QCS-SGM+ with
    /// the reference's EP settings (`None` for QCS-SGM+ with qcs's and for the baselines).
    pub numerics: Option<Numerics>,
    /// The schedule (`None` for the baselines).
    pub schedule: Option<Schedule>,
}

/// A measurement setting and the cells that reconstruct from it.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The operator.
    pub operator: OperatorSpec,
    /// The matrix as the `--matrices` flag spells it, with its parameter (`ill-conditioned:1000`).
    pub matrix: String,
    /// Bits per measurement (`None`: linear).
    pub bits: Option<u32>,
    /// σ.
    pub noise_std: f64,
    /// The cells of this setting.
    pub cells: Vec<Cell>,
}

/// The name of a numerics choice.
pub fn numerics_name(numerics: Numerics) -> &'static str {
    match numerics {
        Numerics::Stable => "stable",
        Numerics::Reference => "reference",
        Numerics::Clamped => "clamped",
    }
}

/// The name of a bit depth: the number, or `linear`.
pub fn bits_name(bits: Option<u32>) -> String {
    bits.map_or_else(|| "linear".to_string(), |b| b.to_string())
}

/// A flag's list without repeated values, or the config's single value when the flag was not given.
fn or_default<T: Clone + PartialEq>(list: &[T], default: T) -> Vec<T> {
    if list.is_empty() {
        vec![default]
    } else {
        distinct(list.to_vec())
    }
}

/// The values in their first order, each once.
fn distinct<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    values.into_iter().fold(Vec::new(), |mut kept, v| {
        if !kept.contains(&v) {
            kept.push(v);
        }
        kept
    })
}

fn parse_bits(list: &[String], config: &Config) -> Result<Vec<Option<u32>>> {
    let names = or_default(list, config.measurement.bits.to_string());
    names
        .iter()
        .map(|name| match name.trim() {
            "linear" => Ok(None),
            text => match text.parse::<u32>() {
                Ok(b) if (1..=8).contains(&b) => Ok(Some(b)),
                _ => bail!("--bits: `{text}` is not a bit depth (1–8 or linear)"),
            },
        })
        .collect::<Result<Vec<_>>>()
        .map(distinct)
}

/// The `--methods` list (default: the config's method, biht, back-projection).
pub fn methods(list: &[String], config: &Config) -> Result<Vec<Method>> {
    let names = if list.is_empty() {
        vec![
            config.sampler.method.clone(),
            "biht".into(),
            "back-projection".into(),
        ]
    } else {
        list.to_vec()
    };
    let parsed = names
        .iter()
        .map(|name| {
            Method::parse(name.trim()).with_context(|| {
                format!(
                    "--methods: unknown method `{name}` (expected qcs-sgm, qcs-sgm-plus, biht or back-projection)"
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(distinct(parsed))
}

/// A `--matrices` entry: `family` or `family:parameter`.
fn parse_matrix(text: &str, config: &Config) -> Result<(Family, String)> {
    let text = text.trim();
    let (name, parameter) = match text.split_once(':') {
        Some((name, value)) => {
            let value: f64 = value.parse().with_context(|| {
                format!("--matrices: `{text}`: the parameter `{value}` is not a number")
            })?;
            (name, Some(value))
        }
        None => (text, None),
    };
    let kappa = parameter.unwrap_or(config.measurement.kappa);
    let rho = parameter.unwrap_or(config.measurement.rho);
    let family =
        Family::parse(name, kappa, rho).with_context(|| format!("--matrices: `{text}`"))?;
    let label = match family {
        Family::IllConditioned { kappa } => format!("ill-conditioned:{kappa}"),
        Family::Correlated { rho } => format!("correlated:{rho}"),
        _ if parameter.is_some() => {
            bail!("--matrices: `{text}`: {name} takes no parameter")
        }
        other => other.name().to_string(),
    };
    Ok((family, label))
}

fn parse_schedules(list: &[String], config: &Config, total: usize) -> Result<Vec<Schedule>> {
    let default = format!(
        "{}x{}",
        config.sampler.levels, config.sampler.steps_per_level
    );
    or_default(list, default)
        .iter()
        .map(|text| {
            let parsed = text.trim().split_once(['x', '×']).and_then(|(l, k)| {
                Some(Schedule {
                    levels: l.trim().parse().ok()?,
                    steps_per_level: k.trim().parse().ok()?,
                })
            });
            match parsed {
                Some(s) if (1..=total).contains(&s.levels) && s.steps_per_level >= 1 => Ok(s),
                Some(_) => bail!(
                    "--schedules: `{text}` needs 1 to {total} levels (the model's) and at least 1 step per level"
                ),
                None => bail!("--schedules: `{text}` is not LEVELSxSTEPS, e.g. 58x2"),
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(distinct)
}

fn parse_numerics(list: &[String]) -> Result<Vec<Numerics>> {
    or_default(list, "stable".to_string())
        .iter()
        .map(|name| match name.trim() {
            "stable" => Ok(Numerics::Stable),
            "reference" => Ok(Numerics::Reference),
            "clamped" => Ok(Numerics::Clamped),
            other => bail!(
                "--numerics: unknown numerics `{other}` (expected stable, reference or clamped)"
            ),
        })
        .collect::<Result<Vec<_>>>()
        .map(distinct)
}

/// The values of M for a bit depth: the `--measurements` list, or ⌊budget/Q⌋.
fn measurement_counts(args: &EvalArgs, config: &Config, bits: Option<u32>) -> Result<Vec<usize>> {
    let Some(budget) = args.budget else {
        return Ok(or_default(
            &args.measurements,
            config.measurement.measurements,
        ));
    };
    let Some(q) = bits else {
        bail!("--budget: linear measurements have no bit count; drop `linear` from --bits");
    };
    let m = budget / q as usize;
    if m == 0 {
        bail!("--budget {budget} leaves no {q}-bit measurement");
    }
    Ok(vec![m])
}

/// The cells of one measurement setting.
fn cells(methods: &[Method], schedules: &[Schedule], numerics: &[Numerics]) -> Vec<Cell> {
    let mut out = Vec::new();
    for &method in methods {
        match method {
            Method::Biht | Method::BackProjection => out.push(Cell {
                method,
                numerics: None,
                schedule: None,
            }),
            // QCS-SGM+ has no stable/reference formula, only EP settings: its default cell carries no
            // numerics (as in results.csv files written before `reference` applied to it), and `clamped`
            // (a QCS-SGM formula) gives it that same cell, once.
            Method::QcsSgmPlus => {
                for &s in schedules {
                    for &n in numerics {
                        let cell = Cell {
                            method,
                            numerics: (n == Numerics::Reference).then_some(n),
                            schedule: Some(s),
                        };
                        if !out.contains(&cell) {
                            out.push(cell);
                        }
                    }
                }
            }
            Method::QcsSgm => {
                for &s in schedules {
                    out.extend(numerics.iter().map(|&n| Cell {
                        method,
                        numerics: Some(n),
                        schedule: Some(s),
                    }));
                }
            }
        }
    }
    out
}

/// Every measurement setting of the sweep, in the order they run (matrix, σ, bits, M), each with its cells.
/// `levels` is the model's number of noise levels (needed only when a method samples).
pub fn plan(
    args: &EvalArgs,
    config: &Config,
    image: ImageShape,
    levels: Option<usize>,
) -> Result<Vec<Setting>> {
    let bits = parse_bits(&args.bits, config)?;
    let methods = methods(&args.methods, config)?;
    let matrices = or_default(&args.matrices, config.measurement.matrix.clone())
        .iter()
        .map(|text| parse_matrix(text, config))
        .collect::<Result<Vec<_>>>()
        .map(distinct)?;
    let noise = or_default(&args.noise_std, config.measurement.noise_std);
    if let Some(bad) = noise.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
        bail!("--noise-std: σ must be finite and ≥ 0, got {bad}");
    }
    let schedules = match levels {
        Some(total) => parse_schedules(&args.schedules, config, total)?,
        None => Vec::new(),
    };
    let numerics = parse_numerics(&args.numerics)?;
    let flags = &args.sampler;
    for (flag, value) in [("--chains", flags.chains), ("--batch", flags.batch)] {
        if value == Some(0) {
            bail!("{flag} must be at least 1, got 0");
        }
    }
    crate::config::check_ep(flags.ep_iterations, flags.ep_damping)?;
    let cells = cells(&methods, &schedules, &numerics);
    let seed = flags.seed.unwrap_or(config.measurement.seed);
    let mut settings = Vec::new();
    for (family, matrix) in &matrices {
        for &sigma in &noise {
            for &b in &bits {
                for m in measurement_counts(args, config, b)? {
                    let operator = OperatorSpec {
                        family: *family,
                        measurements: m,
                        image,
                        seed,
                    };
                    operator
                        .validate()
                        .with_context(|| format!("--matrices {matrix} with M = {m}"))?;
                    settings.push(Setting {
                        operator,
                        matrix: matrix.clone(),
                        bits: b,
                        noise_std: sigma,
                        cells: cells.clone(),
                    });
                }
            }
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_numerics_give_qcs_sgm_plus_a_cell_of_its_own() {
        let schedule = [Schedule {
            levels: 10,
            steps_per_level: 1,
        }];
        let numerics_of = |methods: &[Method], numerics: &[Numerics]| {
            cells(methods, &schedule, numerics)
                .iter()
                .map(|c| (c.method, c.numerics))
                .collect::<Vec<_>>()
        };
        let (stable, reference) = (Numerics::Stable, Numerics::Reference);
        assert_eq!(
            numerics_of(
                &[Method::QcsSgmPlus, Method::QcsSgm, Method::Biht],
                &[stable, reference]
            ),
            [
                (Method::QcsSgmPlus, None),
                (Method::QcsSgmPlus, Some(reference)),
                (Method::QcsSgm, Some(stable)),
                (Method::QcsSgm, Some(reference)),
                (Method::Biht, None),
            ]
        );
        // The default list keeps the label QCS-SGM+ rows always had, so earlier results.csv files resume.
        assert_eq!(
            numerics_of(&[Method::QcsSgmPlus], &[stable]),
            [(Method::QcsSgmPlus, None)]
        );
        // `clamped` is a QCS-SGM formula: QCS-SGM+ runs its default cell once.
        let clamped = Numerics::Clamped;
        assert_eq!(
            numerics_of(&[Method::QcsSgmPlus, Method::QcsSgm], &[stable, clamped]),
            [
                (Method::QcsSgmPlus, None),
                (Method::QcsSgm, Some(stable)),
                (Method::QcsSgm, Some(clamped)),
            ]
        );
    }
}
