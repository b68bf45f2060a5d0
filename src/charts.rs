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
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\
         <title>Emergency service use before and after enrolment, as of {}</title>",
        TOP + HEIGHT + 72,
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

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
    }
}
