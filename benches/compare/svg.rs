//! The two charts of the comparison, as hand-written SVG (no font files or plotting crate
//! needed; text uses the viewer's generic `sans-serif`).
//!
//! * `throughput.svg`: one panel per throughput workload, each with its own linear axis
//!   starting at zero; a horizontal bar per peer at the median rate, a thin line from the
//!   minimum to the maximum repetition, and the median as text.
//! * `latency.svg`: one panel per ask-latency workload; x = percentile (p50 … max), y =
//!   round-trip time on a log scale, one line per peer (medians over the repetitions).

use crate::report::{PERCENTILES, Results, si, stats};
use crate::workload::{Latency, Throughput};
use std::fmt::Write as _;

/// A fixed colour per peer (coreactor stands out), falling back to grey.
fn colour(peer: &str) -> &'static str {
    match peer {
        "coreactor" => "#d62728",
        "threads+crossbeam" => "#7f7f7f",
        "tokio" => "#1f77b4",
        "actix" => "#2ca02c",
        "ractor" => "#9467bd",
        "kameo" => "#ff7f0e",
        _ => "#bcbd22",
    }
}

fn open(w: u32, h: u32, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        w / 2,
        esc(title)
    );
    s
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The throughput small multiples.
pub fn throughput(r: &Results, subtitle: &str) -> String {
    const COLS: usize = 3;
    const PW: f64 = 330.0; // panel width
    const LABEL: f64 = 132.0; // peer-name column
    const BAR: f64 = 18.0;
    let ph = 46.0 + r.peers.len() as f64 * (BAR + 6.0); // panel height
    let rows = Throughput::ALL.len().div_ceil(COLS);
    let (w, h) = (COLS as f64 * PW + 20.0, 60.0 + rows as f64 * ph + 10.0);
    let mut s = open(
        w as u32,
        h as u32,
        "Throughput: higher is better (bar: median of the repetitions; line: min to max)",
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="42" text-anchor="middle" fill="dimgray">{}</text>"#,
        w / 2.0,
        esc(subtitle)
    );
    for (i, wl) in Throughput::ALL.into_iter().enumerate() {
        let x0 = 10.0 + (i % COLS) as f64 * PW;
        let y0 = 56.0 + (i / COLS) as f64 * ph;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-weight="bold">{} <tspan font-weight="normal" fill="dimgray">({})</tspan></text>"#,
            x0 + 4.0,
            y0 + 16.0,
            esc(wl.name()),
            esc(wl.unit())
        );
        let vals: Vec<Option<(f64, f64, f64)>> = r
            .peers
            .iter()
            .map(|p| r.tp(wl, p).and_then(|t| stats(&t.rates)))
            .collect();
        let top = vals
            .iter()
            .flatten()
            .map(|v| v.2)
            .fold(0.0, f64::max)
            .max(1e-9);
        let span = PW - LABEL - 60.0;
        for (j, (peer, v)) in r.peers.iter().zip(&vals).enumerate() {
            let y = y0 + 28.0 + j as f64 * (BAR + 6.0);
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                x0 + LABEL - 6.0,
                y + BAR * 0.72,
                esc(peer)
            );
            match v {
                Some((med, min, max)) => {
                    let bw = med / top * span;
                    let _ = writeln!(
                        s,
                        r#"<rect x="{:.1}" y="{y:.1}" width="{bw:.1}" height="{BAR}" fill="{}"/>"#,
                        x0 + LABEL,
                        colour(peer)
                    );
                    let (a, b) = (x0 + LABEL + min / top * span, x0 + LABEL + max / top * span);
                    let ym = y + BAR / 2.0;
                    let _ = writeln!(
                        s,
                        r#"<line x1="{a:.1}" y1="{ym:.1}" x2="{b:.1}" y2="{ym:.1}" stroke="black" stroke-width="1.5"/>"#
                    );
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                        x0 + LABEL + bw.max(b - x0 - LABEL) + 4.0,
                        y + BAR * 0.72,
                        si(*med)
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r#"<text x="{}" y="{}" fill="gray">n/a</text>"#,
                        x0 + LABEL + 2.0,
                        y + BAR * 0.72
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="black"/>"##,
            x0 + LABEL,
            y0 + 24.0,
            y0 + ph - 14.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Formats nanoseconds for an axis label.
fn ns_label(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{} µs", ns / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// The latency-percentile panels.
pub fn latency(r: &Results, subtitle: &str) -> String {
    const PW: f64 = 470.0;
    const PH: f64 = 360.0;
    let (w, h) = (
        2.0 * PW + 20.0,
        PH + 110.0 + 22.0 * r.peers.len().div_ceil(3) as f64,
    );
    let mut s = open(
        w as u32,
        h as u32,
        "Ask round-trip latency by percentile: lower is better (medians of the repetitions)",
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="42" text-anchor="middle" fill="dimgray">{}</text>"#,
        w / 2.0,
        esc(subtitle)
    );
    // One log axis for both panels, whole decades around every value.
    let all: Vec<f64> = r
        .latency
        .iter()
        .flat_map(|l| PERCENTILES.iter().map(move |(_, f)| l.percentile(*f).0))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log10()
        .floor();
    let hi = all
        .iter()
        .copied()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    for (i, wl) in Latency::ALL.into_iter().enumerate() {
        let x0 = 10.0 + i as f64 * PW;
        let (left, right, top, bottom) = (x0 + 70.0, x0 + PW - 20.0, 80.0, 50.0 + PH);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="66" font-weight="bold" text-anchor="middle">{}</text>"#,
            (left + right) / 2.0,
            esc(wl.name())
        );
        let y_of = |ns: f64| bottom - (ns.max(1.0).log10() - lo) / (hi - lo) * (bottom - top);
        let mut d = lo;
        while d <= hi + 1e-9 {
            let y = y_of(10f64.powf(d));
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="gainsboro"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                left - 6.0,
                y + 4.0,
                ns_label(10f64.powf(d))
            );
            d += 1.0;
        }
        let step = (right - left) / (PERCENTILES.len() - 1) as f64;
        for (k, (label, _)) in PERCENTILES.iter().enumerate() {
            let x = left + k as f64 * step;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="whitesmoke"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                bottom + 16.0
            );
        }
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="black"/>"##,
            right - left,
            bottom - top
        );
        for peer in &r.peers {
            let Some(l) = r.lat(wl, peer) else { continue };
            let pts: Vec<(f64, f64)> = PERCENTILES
                .iter()
                .enumerate()
                .map(|(k, (_, f))| (left + k as f64 * step, y_of(l.percentile(*f).0)))
                .collect();
            let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                path.join(" "),
                colour(peer)
            );
            for (x, y) in pts {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                    colour(peer)
                );
            }
        }
    }
    // Legend.
    for (j, peer) in r.peers.iter().enumerate() {
        let x = 90.0 + (j % 3) as f64 * 260.0;
        let y = PH + 90.0 + (j / 3) as f64 * 22.0;
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            x + 24.0,
            colour(peer),
            x + 30.0,
            y + 4.0,
            esc(peer)
        );
    }
    s.push_str("</svg>\n");
    s
}
