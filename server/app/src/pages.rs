//! Dashboard drill-down pages (DESIGN §12.5): one control of one system with its history strip,
//! one control across every system, and the health of every agent's sources. Server-rendered like
//! the rest of the dashboard (maud escapes every value), no scripts, status shown as words as well
//! as colours.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use aims_model::wire::ControlView;
use aims_model::{ControlStatus, Timestamp};

use crate::AppState;
use crate::dashboard::{Named, finding_evidence, named_records, page, status_label, viewer};
use crate::display::{self, when};
use crate::error::ApiError;

/// Days of history the control page shows.
const STRIP_DAYS: i64 = 90;

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

/// Most records looked up to name the evidence of a control's findings (beyond the control's
/// own evidence, which the page has already).
const MAX_LOOKUPS: usize = 50;

/// The kind and locator of the records the control's findings cite: from its evidence, and the
/// rest (such as the validation a `changed` finding names) from the store.
async fn finding_records(state: &AppState, v: &ControlView) -> Result<Named, ApiError> {
    let mut named = named_records(
        &v.findings,
        v.evidence
            .iter()
            .map(|e| (&e.record_id, &e.kind, &e.locator)),
    );
    let missing: Vec<&aims_model::RecordId> = v
        .findings
        .iter()
        .flat_map(|f| &f.evidence)
        .filter(|r| !named.contains_key(r.as_str()))
        .collect();
    for r in missing.into_iter().take(MAX_LOOKUPS) {
        if named.contains_key(r.as_str()) {
            continue;
        }
        if let Some(e) = state.store.evidence(r.as_str()).await? {
            named.insert(r.as_str().to_owned(), (e.record.kind, e.record.locator));
        }
    }
    Ok(named)
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
    let named = match view {
        Some(v) => finding_records(state, v).await?,
        None => Named::default(),
    };
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
                    p {
                        strong class={ "st " (v.status.as_str()) } { (status_label(v.status)) }
                        @if let Some(t) = v.fresh_until { " " (display::until(t, to)) }
                    }
                    p { (v.reason) }
                    p #maturity {
                        "Maturity " strong { (v.maturity) " of 5" } ": " (v.maturity_reason)
                    }
                    h2 { "Evidence" }
                    @if v.evidence.is_empty() { p { "None." } }
                    @else {
                        table {
                            thead { tr { th { "Kind" } th { "Artifact" } th { "Observed" } th { "SHA-256" } th { "Record" } } }
                            tbody {
                                @for e in &v.evidence {
                                    tr {
                                        td { (e.kind) }
                                        td { (display::locator(&e.locator, None)) }
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
                            (finding_evidence(f, &named))
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
                            tr { td { (when(iv.from, to)) } td { (when(iv.to, to)) } td class={ "st " (iv.status.as_str()) } { (status_label(iv.status)) } td { (iv.reason) } }
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
    Query(q): Query<TableQuery>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    match render_across(&state, &control, &q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Filter and order of a drill-down table, from the query string (links and a GET form: no
/// script needed): `status` keeps rows of that status, `sort` names a column (`status` orders by
/// severity, worst first), `desc=1` reverses.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TableQuery {
    status: Option<String>,
    sort: Option<String>,
    desc: Option<String>,
}

impl TableQuery {
    fn keeps(&self, status: &str) -> bool {
        self.status
            .as_deref()
            .is_none_or(|s| s.is_empty() || s == status)
    }

    fn descending(&self) -> bool {
        matches!(self.desc.as_deref(), Some("1" | "true"))
    }

    /// Orders `rows` by the column `sort` names (`key` gives each row's sort key for a column;
    /// `None`: the column is unknown and the default order stays).
    fn order<T, K: Ord>(&self, rows: &mut [T], key: impl Fn(&str, &T) -> Option<K>) {
        if let Some(col) = self.sort.as_deref() {
            rows.sort_by(|a, b| match (key(col, a), key(col, b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => std::cmp::Ordering::Equal,
            });
        }
        if self.descending() {
            rows.reverse();
        }
    }

    /// A column header that sorts by `col` (again: the other way), keeping the filter.
    fn header(&self, base: &str, col: &str, label: &str) -> Markup {
        let same = self.sort.as_deref() == Some(col);
        let desc = same && !self.descending();
        let mut pairs = vec![("sort", col.to_owned())];
        if desc {
            pairs.push(("desc", "1".to_owned()));
        }
        if let Some(st) = self.status.as_deref().filter(|s| !s.is_empty()) {
            pairs.push(("status", st.to_owned()));
        }
        let mark = match (same, self.descending()) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        };
        html! { a href={ (base) "?" (crate::http_util::query(&pairs)) } { (label) (mark) } }
    }

    /// The status filter as a GET form (`statuses`: the values offered).
    fn filter_form(&self, statuses: &[&str]) -> Markup {
        html! {
            form.filters method="get" {
                label { "Status " select name="status" {
                    option value="" { "any" }
                    @for st in statuses {
                        option value=(st) selected[self.status.as_deref() == Some(*st)] { (st.replace('_', " ")) }
                    }
                } }
                @if let Some(col) = self.sort.as_deref() { input type="hidden" name="sort" value=(col); }
                @if self.descending() { input type="hidden" name="desc" value="1"; }
                " " button type="submit" { "Filter" }
            }
        }
    }
}

/// Worst first: the order a compliance lead reads statuses in.
fn severity(s: ControlStatus) -> u8 {
    match s {
        ControlStatus::Missing => 0,
        ControlStatus::Drifted => 1,
        ControlStatus::Stale => 2,
        ControlStatus::Fresh => 3,
        ControlStatus::Excluded => 4,
        ControlStatus::NotApplicable => 5,
    }
}

const STATUSES: [&str; 6] = [
    "missing",
    "drifted",
    "stale",
    "fresh",
    "excluded",
    "not_applicable",
];

async fn render_across(
    state: &AppState,
    control: &str,
    q: &TableQuery,
) -> Result<Response, ApiError> {
    let Some(def) = state.catalog.control(control) else {
        return Ok(not_found(
            html! { h1 { "No Annex A control " code { (control) } } },
        ));
    };
    crate::assess::flush(state).await?;
    let now = Timestamp::now();
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
    let status_of = |v: &Option<ControlView>| {
        v.as_ref()
            .map_or(ControlStatus::NotApplicable, |v| v.status)
    };
    let total = rows.len();
    rows.retain(|(_, v)| q.keeps(status_of(v).as_str()));
    q.order(&mut rows, |col, (id, v)| match col {
        "system" => Some((0, id.clone())),
        "status" => Some((severity(status_of(v)), id.clone())),
        _ => None,
    });
    let base = format!("/controls/{control}");
    Ok(page(
        control,
        html! {
            h1 { (def.id) " " (def.title) }
            (q.filter_form(&STATUSES))
            p.muted { (rows.len()) " of " (total) " AI systems shown." }
            table #systems {
                thead { tr { th { (q.header(&base, "system", "AI system")) } th { (q.header(&base, "status", "Status")) } th { "Why" } } }
                tbody {
                    @for (id, v) in &rows {
                        @let st = v.as_ref().map_or(ControlStatus::NotApplicable, |v| v.status);
                        tr data-system=(id) {
                            th { a href={ "/systems/" (id) "/controls/" (control) } { (id) } }
                            td class={ "st " (st.as_str()) } {
                                (status_label(st))
                                @if let Some(t) = v.as_ref().and_then(|v| v.fresh_until) { " " (display::until(t, now)) }
                            }
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
pub async fn sources_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TableQuery>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    let now = Timestamp::now();
    let mut sources = match state.store.sources(now).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let total = sources.len();
    sources.retain(|s| q.keeps(s.status.as_str()));
    let rank = |s: &aims_model::wire::SourceHealth| match s.status {
        aims_model::wire::SourceStatus::Failing => 0,
        aims_model::wire::SourceStatus::Silent => 1,
        aims_model::wire::SourceStatus::Ok => 2,
    };
    q.order(&mut sources, |col, s| match col {
        "agent" => Some((s.agent.clone(), s.source.clone(), 0)),
        "source" => Some((s.source.clone(), s.agent.clone(), 0)),
        "type" => Some((s.source_type.clone(), s.source.clone(), 0)),
        "status" => Some((String::new(), format!("{}{}", rank(s), s.source), 0)),
        "poll" => Some((
            s.last_poll_at.map(|t| t.to_string()).unwrap_or_default(),
            s.source.clone(),
            0,
        )),
        "records" => Some((String::new(), s.source.clone(), s.records)),
        _ => None,
    });
    let outbox = match state.store.outbox_counts().await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let sinks: Vec<&str> = state
        .notifier
        .as_ref()
        .map(|n| n.sinks().iter().map(aims_notify::Sink::name).collect())
        .unwrap_or_default();
    let count = |sink: &str, st: &str| {
        outbox
            .iter()
            .find(|c| c.sink == sink && c.state == st)
            .map_or(0, |c| c.count)
    };
    let last_error = |sink: &str| {
        outbox
            .iter()
            .filter(|c| {
                c.sink == sink && (c.state == "dead" || c.state == "failed" || c.state == "pending")
            })
            .find_map(|c| c.last_error.clone())
            .unwrap_or_default()
    };
    page(
        "Sources",
        html! {
            h1 { "Sources" }
            p.muted { "Silent: no poll for three intervals (at least an hour). Failing: the last poll failed." }
            (q.filter_form(&["ok", "failing", "silent"]))
            @if total == 0 { p { "No agent has reported yet." } }
            @else {
                p.muted { (sources.len()) " of " (total) " sources shown. A source's name lists the evidence it produced." }
                table #sources {
                    thead { tr {
                        th { (q.header("/sources", "agent", "Agent")) } th { (q.header("/sources", "source", "Source")) }
                        th { (q.header("/sources", "type", "Type")) } th { (q.header("/sources", "status", "Status")) }
                        th { (q.header("/sources", "poll", "Last poll")) } th { "Last confirmation" } th { "Listed" }
                        th { (q.header("/sources", "records", "Records")) } th { "Last error" }
                    } }
                    tbody {
                        @for s in &sources {
                            @let class = match s.status { aims_model::wire::SourceStatus::Ok => "fresh", aims_model::wire::SourceStatus::Failing => "drifted", aims_model::wire::SourceStatus::Silent => "stale" };
                            tr data-source=(s.source) {
                                td { (s.agent) }
                                td { a href={ "/sources/" (crate::http_util::path_segment(&s.agent)) "/" (crate::http_util::path_segment(&s.source)) } { (s.source) } }
                                td { (s.source_type) }
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
            h2 { "Notifications" }
            @if sinks.is_empty() { p { "No notification sink is configured (settings `notifications:`)." } }
            @else {
                p.muted { "Dead: undelivered for longer than notify.max_age_secs. Failed: refused by the receiver." }
                table #notifications {
                    thead { tr { th { "Sink" } th { "Pending" } th { "Delivered" } th { "Failed" } th { "Dead" } th { "Last error" } } }
                    tbody {
                        @for sink in &sinks {
                            tr data-sink=(sink) {
                                td { (sink) } td { (count(sink, "pending")) } td { (count(sink, "delivered")) }
                                td { (count(sink, "failed")) }
                                td class=@if count(sink, "dead") > 0 { "st drifted" } @else { "" } { (count(sink, "dead")) }
                                td { (last_error(sink)) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// Records shown on a source's page.
const SOURCE_RECORDS: u32 = 200;

/// `GET /sources/{agent}/{source}`: the evidence one source produced, newest first.
pub async fn source_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((agent, source)): Path<(String, String)>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    let now = Timestamp::now();
    let health = match state.store.sources(now).await {
        Ok(all) => all
            .into_iter()
            .find(|s| s.agent == agent && s.source == source),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let records = match state
        .store
        .evidence_by_source(&source, SOURCE_RECORDS)
        .await
    {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Source ids are per agent: keep this agent's.
    let records: Vec<_> = records
        .into_iter()
        .filter(|e| e.record.agent == agent)
        .collect();
    if health.is_none() && records.is_empty() {
        return not_found(
            html! { h1 { "No source " code { (source) } " of agent " code { (agent) } } },
        );
    }
    page(
        &source,
        html! {
            p { a href="/sources" { "← Sources" } }
            h1 { "Source " code { (source) } " of " code { (agent) } }
            @if let Some(h) = &health {
                p { (h.source_type) " · " (h.status.as_str())
                    @if let Some(t) = h.last_poll_at { " · last poll " (when(t, now)) }
                    @if let Some(t) = h.last_confirmed_at { " · last confirmation " (when(t, now)) } }
            }
            @if records.is_empty() { p { "This source has produced no evidence yet." } }
            @else {
                p.muted { "The newest " (records.len()) " records it produced (at most " (SOURCE_RECORDS) "), newest first; each links to its evidence page." }
                table #records {
                    thead { tr { th { "Received" } th { "AI system" } th { "Kind" } th { "Event" } th { "Artifact" } th { "SHA-256" } th { "Leaf" } } }
                    tbody {
                        @for e in &records {
                            tr {
                                td { (when(e.received_at, now)) }
                                td { a href={ "/systems/" (e.record.system) } { (e.record.system) } }
                                td { (e.record.kind) }
                                td { (e.record.event.as_str()) }
                                td { a.mono href={ "/evidence/" (e.record_id) } title=(e.record.locator) { (display::short_locator(&e.record.locator)) } }
                                td.mono { (&e.record.sha256.as_str()[..12]) "…" }
                                td { (e.leaf_index) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
