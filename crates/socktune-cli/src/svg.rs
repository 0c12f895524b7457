//! The report's chart: one horizontal bar per row, in two panels (packets per response, p50
//! RTT), as a plain SVG file any browser shows.

use crate::stats::Summary;

const ROW: f64 = 28.0;
const LABEL_W: f64 = 110.0;
const BAR_W: f64 = 260.0;
const PANEL_W: f64 = LABEL_W + BAR_W + 70.0;
const TOP: f64 = 40.0;

pub fn chart(rows: &[(String, Summary)]) -> String {
    let height = TOP + ROW * rows.len() as f64 + 20.0;
    let ppr: Vec<f64> = rows
        .iter()
        .map(|(_, s)| s.packets_per_response.unwrap_or(0.0))
        .collect();
    let rtt: Vec<f64> = rows.iter().map(|(_, s)| s.rtt_p50_us as f64).collect();
    let labels: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}{}</svg>\n",
        panel(0.0, "packets per response", &labels, &ppr, 2),
        panel(PANEL_W, "RTT p50 (us)", &labels, &rtt, 0),
        w = 2.0 * PANEL_W,
    )
}

fn panel(x0: f64, title: &str, labels: &[&str], values: &[f64], decimals: usize) -> String {
    let max = values
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut out = format!(
        "<text x=\"{}\" y=\"22\" font-weight=\"bold\">{}</text>\n",
        x0 + 10.0,
        escape(title)
    );
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let y = TOP + ROW * i as f64;
        let w = BAR_W * v / max;
        // Arm B (behaviours on) in blue, everything else in grey.
        let fill = if label.ends_with(" B") {
            "#3b6fb6"
        } else {
            "#9a9a9a"
        };
        out += &format!(
            "<text x=\"{tx}\" y=\"{ty}\">{l}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{fill}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{v:.decimals$}</text>\n",
            tx = x0 + 10.0,
            ty = y + 15.0,
            l = escape(label),
            bx = x0 + LABEL_W,
            h = ROW - 8.0,
            vx = x0 + LABEL_W + w + 6.0,
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
