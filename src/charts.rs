//! Charts of reports as SVG, drawn the same for every caller that shows one (the API's
//! `.svg` report, the console). Presentation only: the figures, and what is suppressed,
//! come from the report as the use case built it.

use crate::{
    app::reports::ServiceUsage,
    domain::evaluation::{Cell, Measure},
};

/// A grouped bar chart: for each window, each measure's before (grey) and after (teal)
/// bar, suppressed cells drawn as an outline labelled `<5`.
pub fn service_usage_svg(report: &ServiceUsage) -> String {
    const BAR: u32 = 28;
    const GAP: u32 = 64;
    /// Room above the bars for the window title and the tallest bar's label.
    const TOP: u32 = 44;
    const HEIGHT: u32 = 220;
    let group = 2 * BAR + GAP;
    let width = 80 + (Measure::ALL.len() as u32 * group + 40) * report.windows.len().max(1) as u32;
    let top = report
        .windows
        .iter()
        .flat_map(|w| w.measures.iter().filter(|r| r.measure != "total"))
        .flat_map(|r| [r.before.count(), r.after.count()])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let height = TOP + HEIGHT + 72;
    // The viewBox lets a page narrower than the chart scale it down whole, not crop it.
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\
         <title>Emergency service use before and after enrolment, as of {}</title>",
        report.as_of
    );
    let mut x = 60;
    for window in &report.windows {
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{} months (subjects: {})</text>",
            window.months,
            xml_escape(&window.subjects.to_string())
        ));
        for row in window.measures.iter().filter(|r| r.measure != "total") {
            for (offset, cell, colour) in [(0, row.before, "#9e9e9e"), (BAR, row.after, "#00897b")]
            {
                let bar_x = x + offset;
                match cell {
                    Cell::Count(n) => {
                        let h = (n as f64 / top as f64 * f64::from(HEIGHT)).round() as u32;
                        out.push_str(&format!(
                            "<rect x=\"{bar_x}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"{colour}\"/>\
                             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
                            TOP + HEIGHT - h,
                            BAR - 4,
                            bar_x + BAR / 2 - 2,
                            TOP - 4 + HEIGHT - h
                        ));
                    }
                    Cell::Suppressed(_) => out.push_str(&format!(
                        "<rect x=\"{bar_x}\" y=\"{}\" width=\"{}\" height=\"20\" fill=\"none\" stroke=\"{colour}\" stroke-dasharray=\"3 2\"/>\
                         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                        TOP - 20 + HEIGHT,
                        BAR - 4,
                        bar_x + BAR / 2 - 2,
                        TOP - 24 + HEIGHT,
                        xml_escape(&cell.to_string())
                    )),
                }
            }
            let change = match (row.change_percent, row.suppressed) {
                (Some(c), _) => format!("{c:+.1}%"),
                (None, true) => "suppressed".to_owned(),
                (None, false) => "no change figure".to_owned(),
            };
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{change}</text>",
                x + BAR,
                TOP + HEIGHT + 18,
                xml_escape(row.label),
                x + BAR,
                TOP + HEIGHT + 34
            ));
            x += group;
        }
        x += 40;
    }
    out.push_str(&format!(
        "<rect x=\"60\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"#9e9e9e\"/><text x=\"78\" y=\"{t}\">before enrolment</text>\
         <rect x=\"190\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"#00897b\"/><text x=\"208\" y=\"{t}\">after enrolment</text></svg>",
        y = TOP + HEIGHT + 50,
        t = TOP + HEIGHT + 60
    ));
    out
}

/// Colours told apart by most people with colour-blindness (Okabe–Ito), one per series.
const SERIES_COLOURS: [&str; 7] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000",
];

fn colour(series: usize) -> &'static str {
    SERIES_COLOURS
        .get(series % SERIES_COLOURS.len())
        .copied()
        .unwrap_or("#000000")
}

/// Stacked daily bars, one colour per series (an agency, say), with a legend; the day's
/// total above each bar that has any.
pub fn daily_bars_svg(title: &str, days: &[time::Date], series: &[(String, Vec<u64>)]) -> String {
    const LEFT: usize = 40;
    const TOP: usize = 24;
    const HEIGHT: usize = 180;
    const STEP: usize = 22;
    let totals: Vec<u64> = (0..days.len())
        .map(|day| {
            series
                .iter()
                .filter_map(|(_, counts)| counts.get(day))
                .sum()
        })
        .collect();
    let top = totals.iter().copied().max().unwrap_or(0).max(1);
    let width = LEFT + days.len() * STEP + 20;
    let legend_rows = series.len().div_ceil(3).max(1);
    let height = TOP + HEIGHT + 40 + legend_rows * 18;
    let scale = |n: u64| (n as f64 / top as f64 * HEIGHT as f64).round() as usize;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\
         <title>{}</title>\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#505a5f\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{top}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        xml_escape(title),
        TOP + HEIGHT,
        width - 10,
        TOP + HEIGHT,
        LEFT - 4,
        TOP + 4,
        LEFT - 4,
        TOP + HEIGHT
    );
    for (day, date) in days.iter().enumerate() {
        let x = LEFT + 4 + day * STEP;
        let mut base = TOP + HEIGHT;
        for (index, (_, counts)) in series.iter().enumerate() {
            let n = counts.get(day).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = scale(n).max(1);
            base -= h.min(base);
            out.push_str(&format!(
                "<rect x=\"{x}\" y=\"{base}\" width=\"{}\" height=\"{h}\" fill=\"{}\"/>",
                STEP - 6,
                colour(index)
            ));
        }
        let total = totals.get(day).copied().unwrap_or(0);
        if total > 0 {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\">{total}</text>",
                x + (STEP - 6) / 2,
                base.saturating_sub(3)
            ));
        }
        // A label a week apart, counted back from the last day, so the newest is always
        // labelled and no two collide.
        if (days.len() - 1 - day).is_multiple_of(7) {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} {}</text>",
                x + (STEP - 6) / 2,
                TOP + HEIGHT + 16,
                date.day(),
                date.month().to_string().chars().take(3).collect::<String>()
            ));
        }
    }
    for (index, (name, _)) in series.iter().enumerate() {
        let (column, row) = (index % 3, index / 3);
        let (x, y) = (LEFT + column * 200, TOP + HEIGHT + 30 + row * 18);
        out.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            colour(index),
            x + 18,
            y + 10,
            xml_escape(name)
        ));
    }
    out.push_str("</svg>");
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::evaluation::{service_usage, CohortMember};

    #[test]
    fn suppressed_cells_are_drawn_as_outlines_labelled_with_the_threshold() {
        let enrolled = time::macros::date!(2025 - 01 - 01);
        let cohort = vec![CohortMember {
            enrolled_on: enrolled,
            discharged_on: None,
            events: vec![(Measure::S136Detentions, time::macros::date!(2024 - 06 - 01))],
        }];
        let report = ServiceUsage {
            as_of: "2026-05-31".into(),
            suppression_threshold: 5,
            windows: service_usage(&cohort, &[12], time::macros::date!(2026 - 05 - 31), 5),
        };
        let svg = service_usage_svg(&report);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(
            svg.contains("s136 detentions") && svg.contains("&lt;5"),
            "{svg}"
        );
        assert!(svg.contains("stroke-dasharray"), "{svg}");
        // Scaled, not cropped, where the page is narrower than the chart.
        assert!(svg.contains(r#"viewBox="0 0 "#), "{svg}");
    }
}
