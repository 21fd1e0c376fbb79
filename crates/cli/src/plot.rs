//! The plots of `qcs eval`: PSNR against M and PSNR against NFE, one line per series, drawn with plotters on a
//! bitmap with an embedded font (DejaVu Sans, assets/fonts/), so no system font library is needed.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::results::Row;

/// DejaVu Sans (Bitstream Vera license, assets/fonts/LICENSE-DejaVu).
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The family name the font is registered under.
const FAMILY: &str = "sans-serif";
/// Tableau 10: distinguishable, and readable by most colour-blind readers.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Width of the plotting area plus axes, and height of the picture; the legend gets its own column on the
/// right, as wide as its longest label needs.
const SIZE: (u32, u32) = (820, 620);

/// One line of a plot.
struct Series {
    label: String,
    method: String,
    points: Vec<(f64, f64)>,
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| anyhow!("the embedded font could not be loaded"))
}

/// The fields that tell series apart, and whether each varies over `rows`.
struct Varying {
    numerics: bool,
    matrix: bool,
    noise: bool,
    schedule: bool,
    measurements: bool,
}

fn varies<T: PartialEq>(rows: &[&Row], f: impl Fn(&Row) -> T) -> bool {
    rows.iter().any(|r| f(r) != f(rows[0]))
}

impl Varying {
    fn of(rows: &[&Row]) -> Self {
        let samplers: Vec<&Row> = rows.iter().copied().filter(|r| r.nfe > 0).collect();
        Self {
            numerics: varies(&samplers, |r| r.numerics.clone()),
            matrix: varies(rows, |r| r.matrix.clone()),
            noise: varies(rows, |r| r.noise_std),
            schedule: varies(&samplers, |r| r.schedule()),
            measurements: varies(rows, |r| r.measurements),
        }
    }

    /// The legend text of a row's series: the method, its bit depth, and whatever else varies, except the
    /// field on the x axis (M when `x_is_m`, else the schedule).
    fn label(&self, r: &Row, x_is_m: bool) -> String {
        let mut parts = vec![r.method.clone()];
        if self.numerics && !r.numerics.is_empty() {
            parts.push(r.numerics.clone());
        }
        parts.push(if r.bits == "linear" {
            "linear".into()
        } else {
            format!("{}-bit", r.bits)
        });
        if self.matrix {
            parts.push(r.matrix.clone());
        }
        if self.noise {
            parts.push(format!("σ={}", r.noise_std));
        }
        if !x_is_m && self.measurements {
            parts.push(format!("M={}", r.measurements));
        }
        if x_is_m && self.schedule && r.nfe > 0 {
            parts.push(r.schedule());
        }
        parts.join(" · ")
    }
}

/// Groups rows into series by label, one point per x (the last row wins), sorted by x.
fn series(rows: &[&Row], x_is_m: bool) -> Vec<Series> {
    let varying = Varying::of(rows);
    let mut out: Vec<Series> = Vec::new();
    for r in rows {
        let label = varying.label(r, x_is_m);
        let x = if x_is_m { r.measurements } else { r.nfe } as f64;
        let index = match out.iter().position(|s| s.label == label) {
            Some(i) => i,
            None => {
                out.push(Series {
                    label,
                    method: r.method.clone(),
                    points: Vec::new(),
                });
                out.len() - 1
            }
        };
        let points = &mut out[index].points;
        points.retain(|p| p.0 != x);
        points.push((x, r.psnr));
    }
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Distinct x values of `series`, sorted.
fn ticks(series: &[Series]) -> Vec<f64> {
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// PSNR against M (log axis, a tick at every M), one line per series. Returns false, drawing nothing, when
/// the rows hold fewer than two values of M.
pub fn psnr_vs_m(rows: &[Row], path: &Path) -> Result<bool> {
    let all: Vec<&Row> = rows.iter().collect();
    let lines = series(&all, true);
    if ticks(&lines).len() < 2 {
        return Ok(false);
    }
    draw(
        path,
        "PSNR against the number of measurements",
        "measurements M",
        &lines,
    )?;
    Ok(true)
}

/// PSNR against network evaluations for the sampling methods. Returns false, drawing nothing, when the rows
/// hold fewer than two schedules.
pub fn psnr_vs_nfe(rows: &[Row], path: &Path) -> Result<bool> {
    let samplers: Vec<&Row> = rows.iter().filter(|r| r.nfe > 0).collect();
    let mut schedules: Vec<String> = samplers.iter().map(|r| r.schedule()).collect();
    schedules.sort();
    schedules.dedup();
    if schedules.len() < 2 {
        return Ok(false);
    }
    let lines = series(&samplers, false);
    draw(
        path,
        "PSNR against network evaluations",
        "network evaluations (NFE) per image",
        &lines,
    )?;
    Ok(true)
}

/// Draws the lines into a PNG at `path`, written through a temporary file and a rename.
fn draw(path: &Path, title: &str, x_label: &str, lines: &[Series]) -> Result<()> {
    register_font()?;
    let xs = ticks(lines);
    let (x_lo, x_hi) = (xs[0] / 1.15, xs[xs.len() - 1] * 1.15);
    let ys = lines.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (y_lo, y_hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    let (y_lo, y_hi) = ((y_lo - 1.0).floor(), (y_hi + 1.0).ceil());
    let decimals = if y_hi - y_lo <= 5.0 { 1 } else { 0 };
    let longest = lines
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    let legend_width = 70 + 9 * longest as u32;
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (SIZE.0 + legend_width, SIZE.1)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, (FAMILY, 26))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d((x_lo..x_hi).log_scale().with_key_points(xs), y_lo..y_hi)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("PSNR (dB)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.decimals$}"))
            .label_style((FAMILY, 17))
            .axis_desc_style((FAMILY, 19))
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        for (i, s) in lines.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let style = ShapeStyle::from(color).stroke_width(3);
            chart
                .draw_series(LineSeries::new(s.points.clone(), style))
                .map_err(|e| anyhow!("{e}"))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            // Markers tell the methods apart: circles for the samplers, triangles for BIHT, crosses for
            // back-projection.
            let points = s.points.iter().copied();
            match s.method.as_str() {
                "biht" => {
                    chart.draw_series(points.map(|p| TriangleMarker::new(p, 7, color.filled())))
                }
                "back-projection" => {
                    chart.draw_series(points.map(|p| Cross::new(p, 6, color.stroke_width(3))))
                }
                _ => chart.draw_series(points.map(|p| Circle::new(p, 5, color.filled()))),
            }
            .map_err(|e| anyhow!("{e}"))?;
        }
        legend(&legend_area, lines)?;
        root.present()
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The legend, in its own column right of the plot: a line with the series' marker, and its label.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    lines: &[Series],
) -> Result<()> {
    let font = (FAMILY, 16).into_font().color(&BLACK);
    for (i, s) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let y = 70 + 26 * i as i32;
        let at = (22, y);
        area.draw(&PathElement::new(
            vec![(4, y), (40, y)],
            ShapeStyle::from(color).stroke_width(3),
        ))
        .and_then(|()| match s.method.as_str() {
            "biht" => area.draw(&TriangleMarker::new(at, 7, color.filled())),
            "back-projection" => area.draw(&Cross::new(at, 6, color.stroke_width(3))),
            _ => area.draw(&Circle::new(at, 5, color.filled())),
        })
        .and_then(|()| area.draw(&Text::new(s.label.clone(), (50, y - 9), font.clone())))
        .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}
