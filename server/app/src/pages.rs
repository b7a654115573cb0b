//! Dashboard drill-down pages (DESIGN §12.5): one control of one system with its history strip,
//! one control across every system, and the health of every agent's sources. Server-rendered like
//! the rest of the dashboard (maud escapes every value), no scripts, status shown as words as well
//! as colours.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use aims_model::wire::ControlView;
use aims_model::{ControlStatus, Timestamp};

use crate::AppState;
use crate::dashboard::{page, status_label, viewer};
use crate::error::ApiError;

/// Days of history the control page shows.
const STRIP_DAYS: i64 = 90;

/// `git+file:///x/repo#systems/a/card.md` → `repo:systems/a/card.md`; `s3://…` and others kept;
/// MLflow locators `mlflow:model@alias` / `mlflow:model/3`. The full locator stays in `title`.
pub fn short_locator(locator: &str) -> String {
    if let Some(rest) = locator.strip_prefix("git+")
        && let Some((repo, path)) = rest.split_once('#')
    {
        let name = repo
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .rsplit('/')
            .next()
            .unwrap_or(repo);
        return format!("{name}:{path}");
    }
    if let Some(i) = locator.find("/models/")
        && locator.starts_with("mlflow://")
    {
        let tail = &locator[i + "/models/".len()..];
        if let Some((model, alias)) = tail.split_once("/aliases/") {
            return format!("mlflow:{model}@{alias}");
        }
        if let Some((model, v)) = tail.split_once("/versions/") {
            return format!("mlflow:{model}/{v}");
        }
    }
    locator.to_owned()
}

/// A time for people: the date and how long ago (or ahead), the exact UTC time in `title` and in
/// `<time datetime>`.
pub fn when(t: Timestamp, now: Timestamp) -> Markup {
    let secs = (now.as_datetime() - t.as_datetime()).num_seconds();
    let (n, ago) = (secs.unsigned_abs(), secs >= 0);
    let span = match n {
        0..=59 => "just now".to_owned(),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => {
            let d = n / 86_400;
            format!("{d} day{}", if d == 1 { "" } else { "s" })
        }
    };
    let rel = if span == "just now" {
        span
    } else if ago {
        format!("{span} ago")
    } else {
        format!("in {span}")
    };
    html! {
        time datetime=(t.to_string()) title=(t.to_string()) {
            (t.as_datetime().format("%Y-%m-%d").to_string()) " (" (rel) ")"
        }
    }
}

fn not_found(what: Markup) -> Response {
    (StatusCode::NOT_FOUND, page("Not found", what)).into_response()
}

/// A horizontal strip of the intervals (inline SVG, server-rendered): one rectangle per interval
/// in its status colour, each with a `<title>`; the table below it says the same in words.
fn strip(intervals: &[aims_catalog::StatusInterval], from: Timestamp, to: Timestamp) -> Markup {
    let total = (to.as_datetime() - from.as_datetime())
        .num_milliseconds()
        .max(1) as f64;
    let fill = |s: ControlStatus| match s {
        ControlStatus::Fresh => "#3c9d5b",
        ControlStatus::Stale => "#d9a400",
        ControlStatus::Drifted => "#c0392b",
        ControlStatus::Missing => "#6c4ab6",
        ControlStatus::NotApplicable => "#bbbbbb",
        ControlStatus::Excluded => "#9a9ac8",
    };
    html! {
        svg role="img" aria-label="status history" width="720" height="28" viewBox="0 0 720 28" {
            @for iv in intervals {
                @let x = (iv.from.as_datetime() - from.as_datetime()).num_milliseconds() as f64 / total * 720.0;
                @let w = ((iv.to.as_datetime() - iv.from.as_datetime()).num_milliseconds() as f64 / total * 720.0).max(1.0);
                rect x=(format!("{x:.1}")) y="4" width=(format!("{w:.1}")) height="20" fill=(fill(iv.status)) {
                    title { (status_label(iv.status)) " " (iv.from) " – " (iv.to) }
                }
            }
        }
    }
}

/// `GET /systems/{id}/controls/{control}`: status, reason, the evidence behind it (short
/// locator, SHA-256, ledger leaf), its findings and its history over the last 90 days.
pub async fn control_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, control)): Path<(String, String)>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    match render_control(&state, &id, &control).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render_control(state: &AppState, id: &str, control: &str) -> Result<Response, ApiError> {
    if !state.catalog.is_control(control) {
        return Ok(not_found(
            html! { h1 { "No Annex A control " code { (control) } } },
        ));
    }
    crate::assess::flush(state).await?;
    let Some(views) = crate::assess::controls_of(state, id).await? else {
        return Ok(not_found(html! { h1 { "No AI system " code { (id) } } }));
    };
    let title = state
        .catalog
        .control(control)
        .map(|c| c.title.clone())
        .unwrap_or_default();
    let view: Option<&ControlView> = views.iter().find(|v| v.control == control);
    let to = Timestamp::now();
    let from = Timestamp::from_datetime(to.as_datetime() - chrono::TimeDelta::days(STRIP_DAYS));
    let history = crate::history::system_history(state, id, from, to).await?;
    let intervals = history
        .into_iter()
        .find(|h| h.control == control)
        .map(|h| (h.fresh_ratio, h.intervals));
    Ok(page(
        &format!("{id} {control}"),
        html! {
            p { a href={ "/systems/" (id) } { "← " (id) } " · " a href={ "/controls/" (control) } { (control) " across all systems" } }
            h1 { (control) " " (title) " — " code { (id) } }
            @match view {
                None => p { "Nothing is required of this system for this control and no evidence maps to it." },
                Some(v) => {
                    p { strong class={ "st " (v.status.as_str()) } { (status_label(v.status)) } " " (v.reason) }
                    h2 { "Evidence" }
                    @if v.evidence.is_empty() { p { "None." } }
                    @else {
                        table {
                            thead { tr { th { "Kind" } th { "Artifact" } th { "Observed" } th { "SHA-256" } th { "Record" } } }
                            tbody {
                                @for e in &v.evidence {
                                    tr {
                                        td { (e.kind) }
                                        td.mono title=(e.locator) { (short_locator(&e.locator)) }
                                        td { (when(e.observed_at, to)) }
                                        td.mono { (e.sha256) }
                                        td.mono { a href={ "/evidence/" (e.record_id) } { (&e.record_id.as_str()[..12]) "…" } }
                                    }
                                }
                            }
                        }
                    }
                    h2 { "Findings (" (v.findings.len()) ")" }
                    @for f in &v.findings {
                        div class={ "finding " (f.kind.as_str()) } {
                            strong { (f.kind.as_str()) } " · since " (when(f.since, to))
                            p { (f.message) }
                            p.muted { @for r in &f.evidence { a.mono href={ "/evidence/" (r) } { (&r.as_str()[..12]) "… " } } }
                        }
                    }
                }
            }
            h2 { "Last " (STRIP_DAYS) " days" }
            @if let Some((ratio, ivs)) = &intervals {
                p { "Fresh " (format!("{:.0}", ratio * 100.0)) "% of the time." }
                (strip(ivs, from, to))
                table {
                    thead { tr { th { "From" } th { "To" } th { "Status" } th { "Why" } } }
                    tbody {
                        @for iv in ivs {
                            tr { td { (iv.from) } td { (iv.to) } td class={ "st " (iv.status.as_str()) } { (status_label(iv.status)) } td { (iv.reason) } }
                        }
                    }
                }
            }
        },
    )
    .into_response())
}

/// `GET /controls/{control}`: one control across every AI system.
pub async fn control_across_systems(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(control): Path<String>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    match render_across(&state, &control).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render_across(state: &AppState, control: &str) -> Result<Response, ApiError> {
    let Some(def) = state.catalog.control(control) else {
        return Ok(not_found(
            html! { h1 { "No Annex A control " code { (control) } } },
        ));
    };
    crate::assess::flush(state).await?;
    let mut rows = Vec::new();
    for s in state.store.systems().await? {
        let views = state
            .store
            .system_controls(&s.id)
            .await?
            .unwrap_or_default();
        let v = views.into_iter().find(|v| v.control == control);
        rows.push((s.id, v));
    }
    Ok(page(
        control,
        html! {
            h1 { (def.id) " " (def.title) }
            table #systems {
                thead { tr { th { "AI system" } th { "Status" } th { "Why" } } }
                tbody {
                    @for (id, v) in &rows {
                        @let st = v.as_ref().map_or(ControlStatus::NotApplicable, |v| v.status);
                        tr data-system=(id) {
                            th { a href={ "/systems/" (id) "/controls/" (control) } { (id) } }
                            td class={ "st " (st.as_str()) } { (status_label(st)) }
                            td { (v.as_ref().map_or("Nothing is required and no evidence maps to it.", |v| v.reason.as_str())) }
                        }
                    }
                }
            }
        },
    )
    .into_response())
}

/// `GET /sources`: every agent's sources, their last poll and confirmation, status and error.
pub async fn sources_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    let now = Timestamp::now();
    let sources = match state.store.sources(now).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    page(
        "Sources",
        html! {
            h1 { "Sources" }
            p.muted { "Silent: no poll for three intervals (at least an hour). Failing: the last poll failed." }
            @if sources.is_empty() { p { "No agent has reported yet." } }
            @else {
                table #sources {
                    thead { tr { th { "Agent" } th { "Source" } th { "Type" } th { "Status" } th { "Last poll" } th { "Last confirmation" } th { "Listed" } th { "Records" } th { "Last error" } } }
                    tbody {
                        @for s in &sources {
                            @let class = match s.status { aims_model::wire::SourceStatus::Ok => "fresh", aims_model::wire::SourceStatus::Failing => "drifted", aims_model::wire::SourceStatus::Silent => "stale" };
                            tr data-source=(s.source) {
                                td { (s.agent) } td { (s.source) } td { (s.source_type) }
                                td class={ "st " (class) } { (s.status.as_str()) }
                                td { @match s.last_poll_at { Some(t) => (when(t, now)), None => "—" } }
                                td { @match s.last_confirmed_at { Some(t) => (when(t, now)), None => "—" } }
                                td { (s.listed) } td { (s.records) }
                                td { (s.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_times() {
        let now = Timestamp::parse_utc("2026-12-07T12:00:00Z").unwrap();
        let t = Timestamp::parse_utc("2026-12-04T11:00:00Z").unwrap();
        let html = when(t, now).into_string();
        assert!(html.contains("2026-12-04 (3 days ago)"), "{html}");
        assert!(
            html.contains("title=\"2026-12-04T11:00:00.000Z\""),
            "{html}"
        );
        let later = Timestamp::parse_utc("2027-01-06T12:00:00Z").unwrap();
        assert!(when(later, now).into_string().contains("in 30 days"));
    }

    #[test]
    fn short_locators() {
        assert_eq!(
            short_locator("git+file:///srv/fraud.git#systems/a/card.md"),
            "fraud:systems/a/card.md"
        );
        assert_eq!(short_locator("s3://bucket/key"), "s3://bucket/key");
        assert_eq!(
            short_locator("mlflow://h:5000/models/fraud/aliases/champion"),
            "mlflow:fraud@champion"
        );
        assert_eq!(
            short_locator("mlflow://h:5000/models/fraud/versions/3"),
            "mlflow:fraud/3"
        );
    }
}
