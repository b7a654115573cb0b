//! Server-rendered charts (issue 16 item 4): inline SVG, no script, readable in greyscale.
//!
//! Every chart carries a `<title>` and a `<desc>` (named by `aria-labelledby`), labelled axes or
//! bars with their numbers written out, and only presentation attributes (the pages'
//! Content-Security-Policy allows no inline `style`). Colours come from the one stylesheet and
//! never carry information alone: a bar has its label and count, a line its axis labels, and the
//! page says the same figures in a sentence. Labels are inserted through maud, so a system id or
//! finding kind is escaped like every other value.

use maud::{Markup, html};

use crate::display::day;
use crate::trend::DayShare;

/// `0.8234` → `82 %`.
pub fn percent(r: f64) -> String {
    format!("{:.0} %", (r * 100.0).clamp(0.0, 100.0))
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// The points of each run of days that have a ratio (a day with nothing applicable breaks the
/// line), as `(x, y)` in the plot's coordinates.
fn runs(
    days: &[DayShare],
    x: impl Fn(usize) -> f64,
    y: impl Fn(f64) -> f64,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (i, d) in days.iter().enumerate() {
        match d.ratio() {
            Some(r) => current.push((x(i), y(r))),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn points(run: &[(f64, f64)]) -> String {
    run.iter()
        .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A line and area chart of daily fresh ratios: y from 0 to 100 % with gridlines every 25 %,
/// x labelled with the first, middle and last dates. `id` makes the title and description ids
/// unique on the page; `summary` is the chart's description (the figures in words).
pub fn trend_chart(id: &str, title: &str, summary: &str, days: &[DayShare]) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 44.0;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let n = days.len().max(2) - 1;
    let x = |i: usize| LEFT + pw * i as f64 / n as f64;
    let y = |r: f64| TOP + ph * (1.0 - r.clamp(0.0, 1.0));
    let base = y(0.0);
    let runs = runs(days, x, y);
    let last = days.len().saturating_sub(1);
    let ticks: Vec<usize> = if days.is_empty() {
        Vec::new()
    } else {
        vec![0, last / 3, 2 * last / 3, last]
    };
    let (tid, did) = (format!("{id}-title"), format!("{id}-desc"));
    html! {
        svg.chart role="img" aria-labelledby={ (tid) " " (did) } width=(W) height=(H)
            viewBox={ "0 0 " (W) " " (H) } {
            title id=(tid) { (title) }
            desc id=(did) { (summary) }
            @for pct in [0u32, 25, 50, 75, 100] {
                @let gy = y(f64::from(pct) / 100.0);
                line.grid x1=(LEFT) x2=(W - RIGHT) y1=(num(gy)) y2=(num(gy)) {}
                text.axis x=(LEFT - 6.0) y=(num(gy + 4.0)) text-anchor="end" { (pct) " %" }
            }
            @for i in &ticks {
                @if let Some(d) = days.get(*i) {
                    line.tick x1=(num(x(*i))) x2=(num(x(*i))) y1=(num(base)) y2=(num(base + 5.0)) {}
                    text.axis x=(num(x(*i))) y=(num(base + 18.0))
                        text-anchor=(if *i == 0 { "start" } else if *i == last { "end" } else { "middle" }) {
                        (day(d.start))
                    }
                }
            }
            text.axis x=(LEFT + pw / 2.0) y=(H - 4.0) text-anchor="middle" { "date (UTC), one point per day" }
            text.axis x="12" y=(TOP + ph / 2.0) text-anchor="middle"
                transform={ "rotate(-90 12 " (num(TOP + ph / 2.0)) ")" } { "fresh ratio" }
            @for run in &runs {
                @if let (Some(first), Some(end)) = (run.first(), run.last()) {
                    polygon.area points={
                        (num(first.0)) "," (num(base)) " " (points(run)) " " (num(end.0)) "," (num(base))
                    } {}
                    @if run.len() == 1 {
                        circle.line cx=(num(first.0)) cy=(num(first.1)) r="2.5" {}
                    } @else {
                        polyline.line points=(points(run)) {}
                    }
                }
            }
            line.axisline x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(num(base)) {}
            line.axisline x1=(LEFT) x2=(W - RIGHT) y1=(num(base)) y2=(num(base)) {}
        }
    }
}

/// A small line of daily fresh ratios for a table cell, its figures in its `<title>`.
pub fn sparkline(label: &str, days: &[DayShare]) -> Markup {
    const W: f64 = 96.0;
    const H: f64 = 22.0;
    let n = days.len().max(2) - 1;
    let x = |i: usize| 1.0 + (W - 2.0) * i as f64 / n as f64;
    let y = |r: f64| 2.0 + (H - 4.0) * (1.0 - r.clamp(0.0, 1.0));
    let runs = runs(days, x, y);
    html! {
        svg.spark role="img" aria-label=(label) width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } {
            title { (label) }
            line.grid x1="0" x2=(W) y1=(num(y(0.0))) y2=(num(y(0.0))) {}
            @for run in &runs {
                @if run.len() == 1 {
                    @if let Some(p) = run.first() { circle.line cx=(num(p.0)) cy=(num(p.1)) r="1.5" {} }
                } @else {
                    polyline.line points=(points(run)) {}
                }
            }
        }
    }
}

/// A horizontal bar chart: one row per `(label, count)`, each bar with its label on the left and
/// its count on the right (so the numbers read without the bars).
pub fn bar_chart(id: &str, title: &str, summary: &str, bars: &[(String, u64)]) -> Markup {
    const LABEL_W: f64 = 190.0;
    const BAR_W: f64 = 360.0;
    const ROW: f64 = 24.0;
    const W: f64 = LABEL_W + BAR_W + 60.0;
    let h = ROW * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1) as f64;
    let (tid, did) = (format!("{id}-title"), format!("{id}-desc"));
    html! {
        svg.chart.bars role="img" aria-labelledby={ (tid) " " (did) } width=(W) height=(num(h))
            viewBox={ "0 0 " (W) " " (num(h)) } {
            title id=(tid) { (title) }
            desc id=(did) { (summary) }
            @for (i, (label, count)) in bars.iter().enumerate() {
                @let top = 4.0 + ROW * i as f64;
                @let w = BAR_W * *count as f64 / max;
                text.axis x=(LABEL_W - 8.0) y=(num(top + 15.0)) text-anchor="end" { (label) }
                rect.bar x=(LABEL_W) y=(num(top + 3.0)) width=(num(w.max(if *count > 0 { 2.0 } else { 0.0 }))) height="16" {}
                text.count x=(num(LABEL_W + w + 6.0)) y=(num(top + 15.0)) { (count) }
            }
            line.axisline x1=(LABEL_W) x2=(LABEL_W) y1="2" y2=(num(h - 2.0)) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_model::Timestamp;

    fn day_at(i: i64, fresh: i64, applicable: i64) -> DayShare {
        DayShare {
            start: Timestamp::from_unix_millis(i * 86_400_000).unwrap(),
            fresh_ms: fresh,
            applicable_ms: applicable,
        }
    }

    #[test]
    fn trend_chart_is_labelled_and_breaks_on_days_without_data() {
        let days = vec![
            day_at(0, 1, 2),
            day_at(1, 2, 2),
            day_at(2, 0, 0),
            day_at(3, 0, 4),
        ];
        let svg = trend_chart("t", "Fresh ratio", "fresh ratio 0 % today", &days).into_string();
        assert!(
            svg.contains("<title id=\"t-title\">Fresh ratio</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<desc id=\"t-desc\">fresh ratio 0 % today</desc>"),
            "{svg}"
        );
        assert!(svg.contains("aria-labelledby=\"t-title t-desc\""), "{svg}");
        assert!(
            svg.contains(">100 %</text>") && svg.contains(">0 %</text>"),
            "{svg}"
        );
        assert!(
            svg.contains(">1970-01-01</text>") && svg.contains(">1970-01-04</text>"),
            "{svg}"
        );
        // Two runs: days 0–1 as a line, day 3 alone as a dot.
        assert_eq!(svg.matches("<polygon").count(), 2, "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(!svg.contains("style="), "no inline style: {svg}");
    }

    #[test]
    fn bars_write_their_labels_and_counts_escaped() {
        let svg = bar_chart(
            "b",
            "Findings",
            "2 stale",
            &[("stale".into(), 2), ("<b>\"x\"</b>".into(), 0)],
        )
        .into_string();
        assert!(
            svg.contains(">stale</text>") && svg.contains(">2</text>"),
            "{svg}"
        );
        assert!(svg.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt;"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert_eq!(percent(0.8234), "82 %");
        let spark = sparkline("fresh 50 % today", &[day_at(0, 1, 2)]).into_string();
        assert!(spark.contains("<title>fresh 50 % today</title>"), "{spark}");
    }
}
