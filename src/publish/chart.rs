//! Charts drawn at publish time as SVG (no chart library in the browser), pure: stacked bars,
//! one per period, with the numbers also given as a table beside them (the page's job).
//! Colours come from the stylesheet (`.s0` … `.s3`), so the SVG carries no style attribute.

use std::fmt::Write;

use html_escape::encode_text;

use super::wording::number;

/// One stacked bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBars {
    /// Used for the SVG's ids (`{id}-title`); letters, digits and dashes.
    pub id: String,
    pub title: String,
    /// The series, bottom to top, by name.
    pub series: Vec<String>,
    /// One bar per label: the label and each series' value (absent counts as nothing drawn).
    pub bars: Vec<(String, Vec<Option<i64>>)>,
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 56.0;
const TOP: f64 = 16.0;
const LEGEND_ROW: f64 = 22.0;

/// A round step for the axis: 1, 2 or 5 times a power of ten, giving about four lines.
fn axis_step(max: i64) -> i64 {
    let rough = (max as f64 / 4.0).max(1.0);
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    (step as i64).max(1)
}

impl StackedBars {
    /// The chart as an SVG element, ready to be placed in a page. The SVG is labelled by its
    /// title; the table next to it carries the numbers for screen readers.
    pub fn svg(&self) -> String {
        let totals: Vec<i64> = self
            .bars
            .iter()
            .map(|(_, values)| values.iter().flatten().filter(|v| **v > 0).sum())
            .collect();
        let max = totals.iter().copied().max().unwrap_or(0).max(1);
        let step = axis_step(max);
        let top_value = (max + step - 1) / step * step;
        let legend_height = LEGEND_ROW * self.series.len().div_ceil(2) as f64;
        let height = HEIGHT + legend_height;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let plot_w = WIDTH - LEFT - 8.0;
        let y = |v: i64| TOP + plot_h - (v as f64 / top_value as f64) * plot_h;
        let mut svg = String::new();
        let id = &self.id;
        let _ = write!(
            svg,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"{id}-title\" xmlns=\"http://www.w3.org/2000/svg\">\
             <title id=\"{id}-title\">{}</title>",
            encode_text(&self.title)
        );
        let mut v = 0;
        while v <= top_value {
            let at = y(v);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
                 <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - 8.0,
                LEFT - 6.0,
                at + 4.0,
                number(v)
            );
            v += step;
        }
        let slot = plot_w / self.bars.len().max(1) as f64;
        let bar_w = (slot * 0.7).min(48.0);
        for (i, (label, values)) in self.bars.iter().enumerate() {
            let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
            let mut base = 0;
            for (s, value) in values.iter().enumerate() {
                let Some(value) = value.filter(|v| *v > 0) else {
                    continue;
                };
                let (y_top, y_bottom) = (y(base + value), y(base));
                let series = self.series.get(s).map(String::as_str).unwrap_or("");
                let _ = write!(
                    svg,
                    "<rect class=\"s{}\" x=\"{x:.1}\" y=\"{y_top:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\"><title>{}: {} – {}</title></rect>",
                    s % 4,
                    (y_bottom - y_top).max(0.5),
                    encode_text(label),
                    encode_text(series),
                    number(value)
                );
                base += value;
            }
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                HEIGHT - BOTTOM + 18.0,
                encode_text(label)
            );
        }
        for (s, name) in self.series.iter().enumerate() {
            let (col, row) = ((s % 2) as f64, (s / 2) as f64);
            let lx = LEFT + col * 210.0;
            let ly = HEIGHT - 12.0 + row * LEGEND_ROW;
            let _ = write!(
                svg,
                "<rect class=\"s{}\" x=\"{lx}\" y=\"{:.1}\" width=\"14\" height=\"14\"/>\
                 <text class=\"legend\" x=\"{}\" y=\"{ly:.1}\">{}</text>",
                s % 4,
                ly - 11.0,
                lx + 20.0,
                encode_text(name)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_to_their_total_and_labels_are_escaped() {
        let chart = StackedBars {
            id: "nhan".into(),
            title: "Hồ sơ tiếp nhận <theo> kênh".into(),
            series: vec!["Trực tuyến".into(), "Trực tiếp".into()],
            bars: vec![
                ("10/2026".into(), vec![Some(30), Some(10)]),
                ("11/2026".into(), vec![None, Some(0)]),
            ],
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg class=\"chart\""));
        assert!(svg.contains("Hồ sơ tiếp nhận &lt;theo&gt; kênh"));
        assert!(!svg.contains("style="));
        // Two drawn pieces for October plus two legend squares; nothing for November.
        assert_eq!(svg.matches("<rect class=\"s").count(), 4);
        assert!(svg.contains("10/2026: Trực tuyến – 30"));
        // The axis reaches the largest total (40) on a round step.
        assert!(svg.contains(">40</text>"));
        assert_eq!(axis_step(40), 10);
        assert_eq!(axis_step(7), 2);
        assert_eq!(axis_step(1234), 500);
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let chart = StackedBars {
            id: "x".into(),
            title: "Trống".into(),
            series: vec![],
            bars: vec![],
        };
        assert!(chart.svg().ends_with("</svg>"));
    }
}
