//! The report figure: grouped accuracy bars with error bars, and training-loss curves.
//!
//! Drawn with `plotters` into an in-memory RGB bitmap using an embedded DejaVu Sans font (no
//! system fonts needed), then encoded as PNG with `image`.

use super::report::{cell, mean_std, method_label, rows, temp_path, AugSetting, Metric, RunRecord};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

/// Width of the figure, in pixels.
pub const FIGURE_WIDTH: u32 = 1400;

/// Height of the figure, in pixels.
pub const FIGURE_HEIGHT: u32 = 560;

/// DejaVu Sans (Bitstream Vera licence, see `assets/fonts/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// One colour per (augmentation, GPS) setting, in [`SETTINGS`] order (colour-blind-safe
/// Okabe–Ito hues: light/dark pairs per augmentation).
const COLOURS: [RGBColor; 4] = [
    RGBColor(160, 160, 160),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 114, 178),
];

/// The four bar settings of a group.
const SETTINGS: [(AugSetting, bool); 4] = [
    (AugSetting::Rhflip, false),
    (AugSetting::Rhflip, true),
    (AugSetting::Strong, false),
    (AugSetting::Strong, true),
];

fn setting_label(aug: AugSetting, gps: bool) -> String {
    format!(
        "{} {}",
        aug.paper_name(),
        if gps { "GPS" } else { "baseline" }
    )
}

/// Registers the embedded font as plotters' `sans-serif` family, once per process.
pub(super) fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "font",
            "the embedded DejaVu Sans font could not be parsed",
        ))
    }
}

/// A horizontal reference line on the accuracy panel, e.g. the prior's own weighted 20-NN
/// accuracy, which a GPS run is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceLine {
    /// Text drawn above the line's right end (its value is appended).
    pub label: String,
    /// Accuracy as a fraction in `[0, 1]`, like [`RunRecord::knn_acc`].
    pub value: f64,
}

/// Colour of the [`ReferenceLine`]s (Okabe–Ito reddish purple, unlike any bar).
pub const REFERENCE_COLOUR: RGBColor = RGBColor(204, 121, 167);

/// [`write_figure_with_references`] without reference lines.
pub fn write_figure(path: &Path, records: &[RunRecord], metric: Metric) -> Result<()> {
    write_figure_with_references(path, records, metric, &[])
}

/// Draws `records` into a PNG of [`FIGURE_WIDTH`] × [`FIGURE_HEIGHT`] pixels at `path`.
///
/// Left panel: for each method (row of [`super::markdown_table`]) one bar per setting with
/// runs — RHFlipAug and StrongAug, baseline and GPS — showing the mean of `metric` in percent
/// over seeds, its value written above it, with a ±1 standard deviation error bar when there
/// are several seeds; a horizontal grid line every 10 %, and one line per `references` entry
/// (values outside `[0, 1]` are not drawn). Right panel: the mean training-loss curve (one
/// point per optimiser step) per (method, setting) over seeds; curves are divided by their
/// first value when several methods (with different loss scales) are shown. The file is
/// written through a temporary file and renamed.
pub fn write_figure_with_references(
    path: &Path,
    records: &[RunRecord],
    metric: Metric,
    references: &[ReferenceLine],
) -> Result<()> {
    register_font()?;
    let (w, h) = (FIGURE_WIDTH, FIGURE_HEIGHT);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    let draw_err = |e: String| Error::format(path, format!("cannot draw the figure: {e}"));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        let (left, right) = root.split_horizontally((w * 11 / 20) as i32);
        draw_bars(&left, records, metric, references).map_err(draw_err)?;
        draw_losses(&right, records).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    let tmp = temp_path(path);
    image::save_buffer_with_format(
        &tmp,
        &buf,
        w,
        h,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::format(&tmp, format!("cannot encode PNG: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The grid's lines: one every 10 % (bold style), no minor lines.
const GRID_COLOUR: RGBColor = RGBColor(222, 222, 222);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn draw_bars(
    area: &Area<'_>,
    records: &[RunRecord],
    metric: Metric,
    references: &[ReferenceLine],
) -> Result<(), String> {
    let rows = rows(records);
    let groups = rows.len().max(1);
    let title = format!("{} (%), mean ± std over seeds", metric.title());
    let area = area.margin(8, 0, 0, 0);
    let area = area
        .titled(&title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    // A legend strip above the plot, so it never hides a bar; only settings with runs.
    let present: Vec<usize> = (0..SETTINGS.len())
        .filter(|&s| {
            let (aug, gps) = SETTINGS[s];
            rows.iter()
                .any(|row| !cell(records, row, aug, gps, metric).is_empty())
        })
        .collect();
    let (legend, plot) = area.split_vertically(34);
    let legend_style =
        TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut x = 70;
    for &s in &present {
        let (aug, gps) = SETTINGS[s];
        legend
            .draw(&Rectangle::new(
                [(x, 10), (x + 16, 26)],
                COLOURS[s].filled(),
            ))
            .map_err(|e| e.to_string())?;
        let label = setting_label(aug, gps);
        legend
            .draw(&Text::new(
                label.clone(),
                (x + 22, 18),
                legend_style.clone(),
            ))
            .map_err(|e| e.to_string())?;
        x += 40 + 8 * label.chars().count() as i32;
    }
    let mut chart = ChartBuilder::on(&plot)
        .margin(14)
        .margin_top(4)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(-0.5..groups as f64 - 0.5, 0.0..100.0)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(11)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .bold_line_style(GRID_COLOUR)
        .light_line_style(TRANSPARENT)
        .y_label_style(("sans-serif", 14))
        .y_desc("accuracy (%)")
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    // Method names centred under their groups (plotters' f64 axis cannot take custom ticks).
    let name_style =
        TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    let (plot_x, plot_y) = plot.get_base_pixel();
    for (g, row) in rows.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64, 0.0));
        plot.draw(&Text::new(
            row.label.clone(),
            (x - plot_x, y - plot_y + 8),
            name_style.clone(),
        ))
        .map_err(|e| e.to_string())?;
    }
    // Bars of the settings that have runs share the group's width, so a group is centred on
    // its label whether it shows two settings or four.
    let bar = 0.8 / present.len().max(1) as f64;
    let value_style =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    let mut values_text = Vec::new();
    for (slot, &s) in present.iter().enumerate() {
        let (aug, gps) = SETTINGS[s];
        let colour = COLOURS[s];
        let mut bars = Vec::new();
        let mut whiskers = Vec::new();
        for (g, row) in rows.iter().enumerate() {
            let values = cell(records, row, aug, gps, metric);
            if values.is_empty() {
                continue;
            }
            let (mean, std) = mean_std(&values);
            let (mean, std) = (100.0 * mean, 100.0 * std);
            let x0 = g as f64 - 0.4 + slot as f64 * bar;
            let mid = x0 + bar / 2.0;
            bars.push(Rectangle::new(
                [(x0 + 0.01, 0.0), (x0 + bar - 0.01, mean)],
                colour.filled(),
            ));
            let mut top = mean;
            if values.len() > 1 {
                let (lo, hi) = ((mean - std).max(0.0), (mean + std).min(100.0));
                top = hi;
                let cap = bar / 4.0;
                whiskers.push(PathElement::new(
                    vec![(mid, lo), (mid, hi)],
                    BLACK.stroke_width(2),
                ));
                whiskers.push(PathElement::new(
                    vec![(mid - cap, lo), (mid + cap, lo)],
                    BLACK,
                ));
                whiskers.push(PathElement::new(
                    vec![(mid - cap, hi), (mid + cap, hi)],
                    BLACK,
                ));
            }
            // The value just above the bar (above its error bar when it has one).
            let (x, y) = chart.backend_coord(&(mid, top));
            values_text.push((format!("{mean:.2}"), (x, y - 3)));
        }
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        chart.draw_series(whiskers).map_err(|e| e.to_string())?;
    }
    for reference in references.iter().filter(|r| (0.0..=1.0).contains(&r.value)) {
        let v = 100.0 * reference.value;
        let style = REFERENCE_COLOUR.stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, v), (groups as f64 - 0.5, v)],
                style,
            )))
            .map_err(|e| e.to_string())?;
        // At the line's left end, just under it, on a white box: readable over a bar, and away
        // from the value labels, which sit above their bars.
        let (x, y) = chart.backend_coord(&(-0.5, v));
        let text = format!("{}: {v:.2}", reference.label);
        let style = TextStyle::from(("sans-serif", 13).into_font())
            .color(&RGBColor(120, 40, 90))
            .pos(Pos::new(HPos::Left, VPos::Top));
        let (tw, th) = plot
            .estimate_text_size(&text, &style)
            .map_err(|e| e.to_string())?;
        let (bx, by) = (x - plot_x + 4, y - plot_y + 3);
        plot.draw(&Rectangle::new(
            [(bx - 2, by - 1), (bx + tw as i32 + 2, by + th as i32 + 1)],
            WHITE.filled(),
        ))
        .map_err(|e| e.to_string())?;
        plot.draw(&Text::new(text, (bx, by), style))
            .map_err(|e| e.to_string())?;
    }
    for (text, (x, y)) in values_text {
        plot.draw(&Text::new(
            text,
            (x - plot_x, y - plot_y),
            value_style.clone(),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Mean loss curve per (method, aug, gps) over the seeds that recorded one (truncated to the
/// shortest), in first-appearance order.
fn mean_curves(records: &[RunRecord]) -> Vec<(String, usize, Vec<f64>)> {
    let mut keys: Vec<(String, AugSetting, bool)> = Vec::new();
    for r in records.iter().filter(|r| !r.loss_curve.is_empty()) {
        let key = (r.method.clone(), r.aug, r.gps);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(method, aug, gps)| {
            let curves: Vec<&[f32]> = records
                .iter()
                .filter(|r| r.method == method && r.aug == aug && r.gps == gps)
                .map(|r| r.loss_curve.as_slice())
                .filter(|c| !c.is_empty())
                .collect();
            let len = curves.iter().map(|c| c.len()).min().unwrap_or(0);
            let mean = (0..len)
                .map(|i| curves.iter().map(|c| f64::from(c[i])).sum::<f64>() / curves.len() as f64)
                .collect();
            let setting = SETTINGS.iter().position(|s| *s == (aug, gps)).unwrap_or(0);
            (
                format!("{} {}", method_label(&method), setting_label(aug, gps)),
                setting,
                mean,
            )
        })
        .collect()
}

fn draw_losses(area: &Area<'_>, records: &[RunRecord]) -> Result<(), String> {
    let mut curves = mean_curves(records);
    let methods: Vec<&str> = {
        let mut m: Vec<&str> = records.iter().map(|r| r.method.as_str()).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    let relative = methods.len() > 1;
    if relative {
        for (_, _, c) in &mut curves {
            let first = c
                .first()
                .copied()
                .filter(|f| f.abs() > 1e-12)
                .unwrap_or(1.0);
            c.iter_mut().for_each(|v| *v /= first);
        }
    }
    let len = curves.iter().map(|c| c.2.len()).max().unwrap_or(0).max(2);
    let finite = curves
        .iter()
        .flat_map(|c| c.2.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption("training loss", ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(1.0..len as f64, lo..hi)
        .map_err(|e| e.to_string())?;
    let steps = |v: &f64| format!("{v:.0}");
    chart
        .configure_mesh()
        .x_labels(len.min(11))
        .x_label_formatter(&steps)
        .bold_line_style(GRID_COLOUR)
        .light_line_style(TRANSPARENT)
        .x_desc("training step")
        .y_desc(if relative {
            "loss / first-step loss"
        } else {
            "loss"
        })
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    if curves.is_empty() {
        let text = Text::new(
            "no loss curves recorded",
            (1.2, (lo + hi) / 2.0),
            ("sans-serif", 18),
        );
        chart
            .draw_series(std::iter::once(text))
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    for (m, (label, setting, curve)) in curves.into_iter().enumerate() {
        // One method: the setting's bar colour. Several: a distinct colour per curve.
        let colour = if relative {
            Palette99::pick(m).to_rgba()
        } else {
            COLOURS[setting].to_rgba()
        };
        let style = colour.stroke_width(2);
        let points: Vec<(f64, f64)> = curve
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect();
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}
