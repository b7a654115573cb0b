//! The compliance lead's dashboard: server-rendered HTML, no scripts, readable without colour.
//!
//! Every value that came from an artifact or an agent is inserted through maud, which escapes it,
//! so a model card containing `<script>` renders as text. Pages need a read-capable credential:
//! a session started at `/login` (or with `/?token=…&next=/path`, which redirects to a clean
//! URL), or a bearer header for scripts. The session cookie holds a random id, never the token
//! (see `auth.rs`); the sign-in and sign-out forms refuse cross-site submissions, and `next` is
//! only ever a path on this site. Every page carries a strict Content-Security-Policy (no
//! scripts; the one stylesheet allowed by its hash, see `http_util.rs`). An admin's session also
//! gets the write forms of the system page (`forms.rs`, guarded by `csrf.rs`).

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use aims_model::wire::ControlView;
use aims_model::{ControlStatus, FindingKind, RecordId, Timestamp};

use crate::AppState;
use crate::auth::{self, Principal};
use crate::charts;
use crate::display;
use crate::error::ApiError;
use crate::http_util::{cross_site_refusal, media_type_is, same_site_path};
use crate::trend::{DayShare, TREND_DAYS, Trend};

/// The pages' only stylesheet, inlined; the Content-Security-Policy allows it by its SHA-256.
pub(crate) const CSS: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1f2a37;color:#fff;padding:.8rem 1.5rem;display:flex;gap:1.5rem;align-items:baseline}
header a{color:#fff;text-decoration:none}header .sub{color:#b8c2cc;font-size:.9rem}
main{padding:1rem 1.5rem}h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;background:#fff;font-size:.88rem}
th,td{border:1px solid #d8dde3;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4}th.ctl{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:600}
td.st{text-align:center;font-weight:600;font-size:.75rem;text-transform:uppercase}
.fresh{background:#d3f2dc;color:#0d5d26}.stale{background:#ffefc2;color:#7a5200}
.drifted{background:#ffd6d3;color:#8f1d14}.missing{background:#e7dff5;color:#4b2a85}
.not_applicable{background:#f0f0f0;color:#777}
.excluded{background:#e8e8f4;color:#555;font-style:italic}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem;word-break:break-all}
.legend span{display:inline-block;padding:.15rem .5rem;margin-right:.4rem;border-radius:3px;font-size:.8rem}
.finding{background:#fff;border-left:4px solid #8f1d14;padding:.5rem .8rem;margin:.5rem 0}
.finding.stale{border-color:#c98a00}.finding.missing{border-color:#4b2a85}.finding.gone{border-color:#555}
.muted{color:#5d6875;font-size:.85rem}
form.inline{display:inline}form.inline button{font:inherit;padding:0;border:0;background:none;color:#0645ad;text-decoration:underline;cursor:pointer}
nav.tools{margin:.3rem 0 .8rem}nav.tools a{margin-right:1rem}
td.st .until{display:block;font-size:.68rem;font-weight:400;text-transform:none;white-space:nowrap}
#grid td.st .until .left{display:block}
details.full{display:inline}details.full summary{display:inline;cursor:pointer;color:#5d6875;font-size:.72rem}
details.full[open] code{display:block;background:#eef1f4;padding:.2rem .3rem;margin-top:.2rem}
section.charts{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}section.charts>div{max-width:100%}
svg.chart{background:#fff;border:1px solid #d8dde3;max-width:100%;height:auto}
svg .grid{stroke:#e3e7ec;stroke-width:1}svg .axisline,svg .tick{stroke:#5d6875;stroke-width:1}
svg .axis{font-size:11px;fill:#3b4450}svg .count{font-size:11px;font-weight:600;fill:#1b1f24}
svg .area{fill:#c9d8ec}svg .line{fill:none;stroke:#1f3b63;stroke-width:2}svg circle.line{fill:#1f3b63;stroke:none}
svg .bar{fill:#4a5a70}svg.spark{vertical-align:middle}
.summary{font-size:.95rem}.error{background:#fff;border-left:4px solid #8f1d14;padding:.5rem .8rem}
pre.policy{background:#fff;border:1px solid #d8dde3;padding:.6rem;white-space:pre-wrap;word-break:break-all}
tr.del td{background:#ffecea}tr.add td{background:#e6f6ea}tr.skipped td{color:#5d6875;font-style:italic}
code.line{white-space:pre-wrap;word-break:break-all}
.notice{background:#fff;padding:.5rem .8rem;border-left:4px solid #0d5d26}.notice.error{border-color:#8f1d14}
section.forms{display:flex;flex-wrap:wrap;gap:1.5rem}section.forms form{background:#fff;border:1px solid #d8dde3;padding:.2rem 1rem .6rem}
p.accepted{font-size:.85rem;color:#0d5d26}
"#;

pub(crate) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · aims-evidence" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a href="/" { strong { "aims-evidence" } }
                    span.sub { "ISO/IEC 42001 Annex A evidence freshness" }
                    a href="/sources" { "Sources" }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn status_label(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Fresh => "fresh",
        ControlStatus::Stale => "stale",
        ControlStatus::Drifted => "drifted",
        ControlStatus::Missing => "missing",
        ControlStatus::NotApplicable => "n/a",
        ControlStatus::Excluded => "excluded",
    }
}

fn legend() -> Markup {
    html! {
        p.legend {
            @for s in [ControlStatus::Fresh, ControlStatus::Stale, ControlStatus::Drifted, ControlStatus::Missing, ControlStatus::Excluded, ControlStatus::NotApplicable] {
                span class=(s.as_str()) { (status_label(s)) }
            }
        }
    }
}

/// Resolves the request's bearer header or session cookie to a reader, or answers with the
/// sign-in page.
pub(crate) async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let principal = if let Some(token) = auth::bearer(headers) {
        auth::authenticate(state, &token).await
    } else if let Some(id) = auth::session_cookie(headers, state.tls) {
        auth::authenticate_session(state, &id).await
    } else {
        return Err(Redirect::to("/login").into_response());
    };
    match principal {
        Ok(p) if p.role.can_read() => Ok(p),
        Ok(_) => Err(login_page(
            StatusCode::FORBIDDEN,
            Some("This token cannot read the dashboard; use a viewer or auditor token."),
        )
        .into_response()),
        Err(_) => Err(login_page(
            StatusCode::UNAUTHORIZED,
            Some(
                "Your session has ended (expired, signed out or its token revoked). Sign in again.",
            ),
        )
        .into_response()),
    }
}

fn login_page(status: StatusCode, error: Option<&str>) -> (StatusCode, Markup) {
    (
        status,
        page(
            "Sign in",
            html! {
                h1 { "Sign in" }
                @if let Some(e) = error { p.finding { (e) } }
                p { "Paste a viewer or auditor token (" code { "aims-server token create --role viewer --name NAME" } ")." }
                form method="post" action="/login" {
                    input type="password" name="token" size="60" autocomplete="off" required;
                    " "
                    button type="submit" { "Sign in" }
                }
            },
        ),
    )
}

/// Query of `/`.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
    next: Option<String>,
    /// Grid filter: only systems with a control of this status.
    status: Option<String>,
    /// Grid filter: only systems whose id contains this text.
    q: Option<String>,
    /// Grid order: `id` (default), or most `drifted`, `missing`, `stale` first.
    sort: Option<String>,
    /// Grid page (from 1).
    page: Option<usize>,
}

/// Systems per page of the grid.
const GRID_PAGE: usize = 50;

/// The grid's filter, order and page, from the query (unknown values are ignored, not errors:
/// the page is for people).
struct GridView {
    status: Option<ControlStatus>,
    q: String,
    sort: &'static str,
    page: usize,
}

impl GridView {
    fn of(q: &TokenQuery) -> Self {
        let status = q.status.as_deref().and_then(|s| {
            [
                ControlStatus::Fresh,
                ControlStatus::Stale,
                ControlStatus::Drifted,
                ControlStatus::Missing,
                ControlStatus::Excluded,
                ControlStatus::NotApplicable,
            ]
            .into_iter()
            .find(|c| c.as_str() == s)
        });
        let sort = match q.sort.as_deref() {
            Some("drifted") => "drifted",
            Some("missing") => "missing",
            Some("stale") => "stale",
            _ => "id",
        };
        Self {
            status,
            q: q.q.clone().unwrap_or_default().trim().to_owned(),
            sort,
            page: q.page.unwrap_or(1).max(1),
        }
    }

    /// The query string of this view at `page`.
    fn link(&self, page: usize) -> String {
        let mut pairs = Vec::new();
        if let Some(s) = self.status {
            pairs.push(("status", s.as_str().to_owned()));
        }
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if self.sort != "id" {
            pairs.push(("sort", self.sort.to_owned()));
        }
        pairs.push(("page", page.to_string()));
        format!("/?{}", crate::http_util::query(&pairs))
    }

    /// The systems this view shows, in its order: the page and the number that match.
    fn select<'a>(
        &self,
        systems: &'a [aims_model::wire::SystemSummary],
    ) -> (Vec<&'a aims_model::wire::SystemSummary>, usize) {
        let mut out: Vec<&aims_model::wire::SystemSummary> = systems
            .iter()
            .filter(|s| self.q.is_empty() || s.id.contains(&self.q))
            .filter(|s| self.status.is_none_or(|st| s.controls.get(st) > 0))
            .collect();
        let key = |s: &aims_model::wire::SystemSummary| match self.sort {
            "drifted" => s.controls.drifted,
            "missing" => s.controls.missing,
            "stale" => s.controls.stale,
            _ => 0,
        };
        out.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.id.cmp(&b.id)));
        let matching = out.len();
        let start = (self.page - 1).saturating_mul(GRID_PAGE);
        (
            out.into_iter().skip(start).take(GRID_PAGE).collect(),
            matching,
        )
    }
}

/// A 303 to `to` that sets (or clears) the session cookie.
fn cookie_and_redirect(set_cookie: String, to: &str) -> Response {
    (
        [
            (header::SET_COOKIE, set_cookie),
            (header::LOCATION, to.to_owned()),
        ],
        StatusCode::SEE_OTHER,
    )
        .into_response()
}

/// Exchanges a token for a session and redirects to `to`, or answers with the sign-in page
/// saying why not (nothing from the request goes into a cookie).
async fn sign_in(state: &AppState, token: &str, to: &str) -> Response {
    match auth::start_session(state, token.trim()).await {
        Ok(cookie) => cookie_and_redirect(cookie, to),
        Err(e) if e.status() == StatusCode::FORBIDDEN => login_page(
            StatusCode::FORBIDDEN,
            Some("This token cannot read the dashboard; use a viewer or auditor token."),
        )
        .into_response(),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => login_page(
            StatusCode::UNAUTHORIZED,
            Some("That token is unknown, expired or revoked."),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The refusal of a dashboard form post that comes from another site or is not a URL-encoded
/// form, if it is one.
fn form_post_refusal(headers: &HeaderMap) -> Option<Response> {
    if let Some(why) = cross_site_refusal(headers) {
        tracing::info!(reason = why, "refused a cross-site form post");
        return Some(
            login_page(
                StatusCode::FORBIDDEN,
                Some("This form was not submitted from this site."),
            )
            .into_response(),
        );
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| media_type_is(v, "application", "x-www-form-urlencoded"));
    if !form {
        return Some(
            login_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("The form must be sent as application/x-www-form-urlencoded."),
            )
            .into_response(),
        );
    }
    None
}

/// `GET /login`.
pub async fn get_login() -> impl IntoResponse {
    login_page(StatusCode::OK, None)
}

/// `POST /login` (form field `token`).
pub async fn post_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    if let Some(refusal) = form_post_refusal(&headers) {
        return refusal;
    }
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    sign_in(&state, &token, "/").await
}

/// `GET /logout`: a page with the sign-out button (signing out changes state, so it is a POST).
pub async fn get_logout() -> Markup {
    page(
        "Sign out",
        html! {
            h1 { "Sign out" }
            form method="post" action="/logout" { button type="submit" { "Sign out" } }
        },
    )
}

/// `POST /logout`: deletes the session and clears the cookie.
pub async fn post_logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refusal) = form_post_refusal(&headers) {
        return refusal;
    }
    match auth::end_session(&state, &headers).await {
        Ok(cookie) => cookie_and_redirect(cookie, "/login"),
        Err(e) => e.into_response(),
    }
}

/// `GET /`: systems × A.6/A.7 controls.
pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(token) = q.token {
        // A sign-in link works when opened directly (typed, pasted, from a terminal), not from
        // another site's page: that would sign the browser in with someone else's token.
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v != "none" && v != "same-origin")
        {
            return login_page(
                StatusCode::FORBIDDEN,
                Some("Sign-in links only work when opened directly; paste the token here instead."),
            )
            .into_response();
        }
        // Only a path on this site, so the parameter cannot send a browser elsewhere.
        let next = q.next.as_deref().and_then(same_site_path);
        return sign_in(&state, &token, next.as_deref().unwrap_or("/")).await;
    }
    let principal = match viewer(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match render_index(&state, &principal, &GridView::of(&q)).await {
        Ok(m) => m.into_response(),
        Err(e) => e.into_response(),
    }
}

/// One grid cell: the status as a link to the drill-down page, and for a fresh control when its
/// window closes.
fn grid_cell(
    system: &str,
    c: &aims_catalog::Control,
    v: Option<&ControlView>,
    now: Timestamp,
) -> Markup {
    let st = v.map_or(ControlStatus::NotApplicable, |v| v.status);
    html! {
        td class={ "st " (st.as_str()) } data-control=(c.id)
            title=(v.map_or(String::new(), |v| format!("{} {}: {}", c.id, c.title, v.reason))) {
            a href={ "/systems/" (system) "/controls/" (c.id) } { (status_label(st)) }
            @if let Some(t) = v.and_then(|v| v.fresh_until) { " " (display::until(t, now)) }
        }
    }
}

/// The text that says what the trend chart shows: today, 30 days ago and the first day.
fn trend_summary(what: &str, days: &[DayShare]) -> String {
    let say = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), charts::percent);
    let first = days
        .first()
        .map(|d| display::day(d.start))
        .unwrap_or_default();
    format!(
        "{what}: fresh ratio {} today, {} 30 days ago, {} on {first}.",
        say(Trend::ratio_days_ago(days, 0)),
        say(Trend::ratio_days_ago(days, 30)),
        say(days.first().and_then(DayShare::ratio)),
    )
}

/// The trend chart with its sentence and, folded, the daily figures as a table.
pub(crate) fn trend_section(id: &str, what: &str, days: &[DayShare]) -> Markup {
    let summary = trend_summary(what, days);
    html! {
        div #(id) {
            (charts::trend_chart(id, &format!("{what}: daily fresh ratio, last {TREND_DAYS} days"), &summary, days))
            p.summary { (summary) }
            p.muted { "Share of each day's applicable control-time (A.6/A.7 grid controls) that was fresh; not applicable and excluded time, and time before a system's first record, are left out." }
            details {
                summary { "Daily figures" }
                table {
                    thead { tr { th { "Day (UTC)" } th { "Fresh ratio" } } }
                    tbody {
                        @for d in days.iter().rev() {
                            tr { td { (display::day(d.start)) } td { (d.ratio().map_or_else(|| "n/a".to_owned(), charts::percent)) } }
                        }
                    }
                }
            }
        }
    }
}

/// How many fresh grid cells have their window close within 7, 8–30, 31–90 and after 90 days.
fn closing_counts(
    rows: &[(&aims_model::wire::SystemSummary, Vec<ControlView>)],
    columns: &[&aims_catalog::Control],
    now: Timestamp,
) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (_, views) in rows {
        for v in views
            .iter()
            .filter(|v| columns.iter().any(|c| c.id == v.control))
        {
            if let Some(t) = v.fresh_until.filter(|_| v.status == ControlStatus::Fresh) {
                let i = match display::days_left(t, now) {
                    0..=7 => 0,
                    8..=30 => 1,
                    31..=90 => 2,
                    _ => 3,
                };
                out[i] += 1;
            }
        }
    }
    out
}

fn closing_section(counts: [u64; 4]) -> Markup {
    let labels = [
        "within 7 days",
        "in 8–30 days",
        "in 31–90 days",
        "after 90 days",
    ];
    let bars: Vec<(String, u64)> = labels
        .iter()
        .zip(counts)
        .map(|(l, c)| ((*l).to_owned(), c))
        .collect();
    let total: u64 = counts.iter().sum();
    let summary = format!(
        "Of {total} fresh controls, {} close within 7 days, {} within 30 days and {} within 90 days.",
        counts[0],
        counts[0] + counts[1],
        counts[0] + counts[1] + counts[2]
    );
    html! {
        div #closing {
            (charts::bar_chart("closing-chart", "Freshness windows closing (fresh controls by days left)", &summary, &bars))
            p.summary { (summary) }
        }
    }
}

async fn render_index(
    state: &AppState,
    principal: &Principal,
    view: &GridView,
) -> Result<Markup, ApiError> {
    crate::assess::flush(state).await?;
    let now = Timestamp::now();
    let all = state.store.systems().await?;
    let (systems, matching) = view.select(&all);
    let pages = matching.div_ceil(GRID_PAGE).max(1);
    let controls = state.catalog.dashboard_controls();
    let mut rows = Vec::new();
    for s in systems.iter().copied() {
        let views = state
            .store
            .system_controls(&s.id)
            .await?
            .unwrap_or_default();
        rows.push((s, views));
    }
    let trend = crate::trend::dashboard_trend(state).await?;
    let checkpoint = state.store.latest_checkpoint().await?;
    Ok(page(
        "Dashboard",
        html! {
            h1 { "AI systems × Annex A.6 / A.7 controls" }
            @if principal.role.can_export() {
                nav.tools { a #audit-link href="/audit" { "Auditor workspace" } " (period report, exports, trust keys, file check)" }
            }
            (legend())
            form.inline #grid-filter method="get" action="/" {
                label for="status" { "Status " }
                select #status name="status" {
                    option value="" selected[view.status.is_none()] { "any" }
                    @for st in ["fresh", "stale", "drifted", "missing", "excluded"] {
                        option value=(st) selected[view.status.is_some_and(|s| s.as_str() == st)] { (st) }
                    }
                }
                " " label for="q" { "System " }
                input #q type="search" name="q" value=(view.q) placeholder="id contains";
                " " label for="sort" { "Order " }
                select #sort name="sort" {
                    @for (v, label) in [("id", "by id"), ("drifted", "most drifted"), ("missing", "most missing"), ("stale", "most stale")] {
                        option value=(v) selected[view.sort == v] { (label) }
                    }
                }
                " " button type="submit" { "Show" }
                " " span.muted #grid-count { (matching) " of " (all.len()) " systems" @if pages > 1 { ", page " (view.page) " of " (pages) } }
            }
            @if all.is_empty() {
                p { "No evidence yet. Point an agent at this server (" code { "aims-agent once --config agent.yaml" } ")." }
            } @else {
                table #grid {
                    thead { tr {
                        th { "AI system" }
                        @for c in &controls { th.ctl title=(c.title) { a href={ "/controls/" (c.id) } { (c.id) } } }
                        th { "fresh" } th { "stale" } th { "drifted" } th { "missing" }
                        th title="Maturity 0–5 of the system's applicable controls (all of Annex A)" { "maturity" }
                        th { "last " (TREND_DAYS) " days" }
                    } }
                    tbody {
                        @for (s, views) in &rows {
                            tr data-system=(s.id) {
                                th { a href={ "/systems/" (s.id) } { (s.id) } }
                                @for c in &controls {
                                    (grid_cell(&s.id, c, views.iter().find(|v| v.control == c.id), now))
                                }
                                // Totals of the cells shown, not of every assessed control.
                                @let shown = shown_counts(&controls, views);
                                td { (shown.fresh) } td { (shown.stale) }
                                td { (shown.drifted) } td { (shown.missing) }
                                (display::maturity_cell(state.catalog.maturity(), display::maturity_of(views)))
                                td.trend {
                                    @if let Some(days) = trend.systems.get(&s.id) {
                                        (charts::sparkline(&trend_summary(&s.id, days), days))
                                    }
                                }
                            }
                        }
                    }
                }
                @if pages > 1 {
                    nav.pages #grid-pages {
                        @if view.page > 1 { a rel="prev" href=(view.link(view.page - 1)) { "← previous" } " " }
                        @if view.page < pages { a rel="next" href=(view.link(view.page + 1)) { "next →" } }
                    }
                }
                h2 { "Trends" }
                section.charts {
                    (trend_section("trend", "All systems", &trend.all))
                    (closing_section(closing_counts(&rows, &controls, now)))
                }
            }
            p.muted {
                "Catalog " (state.catalog.version()) " · ledger size "
                (checkpoint.as_ref().map_or(0, |c| c.size))
                " · " a href="/v1/log/checkpoint" { "signed checkpoint" }
                " · " form.inline method="post" action="/logout" { button type="submit" { "sign out" } }
            }
        },
    ))
}

/// Status counts over the grid's columns only (a control that is assessed but not a column, such
/// as A.8.4 through a monitoring report, is not counted).
fn shown_counts(
    columns: &[&aims_catalog::Control],
    views: &[ControlView],
) -> aims_model::wire::StatusCounts {
    let mut counts = aims_model::wire::StatusCounts::default();
    for c in columns {
        let st = views
            .iter()
            .find(|v| v.control == c.id)
            .map_or(ControlStatus::NotApplicable, |v| v.status);
        counts.add(st);
    }
    counts
}

fn control_row(system: &str, v: &ControlView, now: Timestamp) -> Markup {
    html! {
        tr data-control=(v.control) {
            td { a href={ "/systems/" (system) "/controls/" (v.control) } { strong { (v.control) } } br; span.muted { (v.title) } }
            td class={ "st " (v.status.as_str()) } {
                (status_label(v.status))
                @if let Some(t) = v.fresh_until { " " (display::until(t, now)) }
            }
            td { (v.reason) }
            td {
                @for e in v.evidence.iter().take(5) {
                    div { (e.kind) ": " (display::locator(&e.locator, Some(&format!("/evidence/{}", e.record_id)))) }
                }
                @if v.evidence.len() > 5 { span.muted { "+" (v.evidence.len() - 5) " more" } }
            }
        }
    }
}

/// Open findings per kind, every kind listed (zeros included), as a bar chart and a sentence.
fn findings_by_kind(findings: &[aims_model::Finding]) -> Markup {
    let kinds = [
        FindingKind::Missing,
        FindingKind::Failed,
        FindingKind::Changed,
        FindingKind::Inconsistent,
        FindingKind::Stale,
        FindingKind::Gone,
    ];
    let bars: Vec<(String, u64)> = kinds
        .iter()
        .map(|k| {
            let n = findings.iter().filter(|f| f.kind == *k).count() as u64;
            (k.as_str().to_owned(), n)
        })
        .collect();
    let said: Vec<String> = bars
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let summary = if said.is_empty() {
        "No open findings.".to_owned()
    } else {
        format!("Open findings by kind: {}.", said.join(", "))
    };
    html! {
        div #findings-by-kind {
            (charts::bar_chart("findings-chart", "Open findings by kind", &summary, &bars))
            p.summary { (summary) }
        }
    }
}

/// Kind and locator of records a page knows, by record ID, to name a finding's evidence.
pub(crate) type Named = HashMap<String, (String, String)>;

/// The kind and locator of every record the findings cite, from `records` (record ID, kind,
/// locator).
pub(crate) fn named_records<'a>(
    findings: &[aims_model::Finding],
    records: impl IntoIterator<Item = (&'a RecordId, &'a String, &'a String)>,
) -> Named {
    let cited: HashSet<&str> = findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(RecordId::as_str))
        .collect();
    records
        .into_iter()
        .filter(|(id, _, _)| cited.contains(id.as_str()))
        .map(|(id, kind, locator)| (id.as_str().to_owned(), (kind.clone(), locator.clone())))
        .collect()
}

/// A finding's evidence as links to `/evidence/{id}`, each named by its kind and short locator
/// when the page knows the record (else by the first 12 digits of its ID); a `changed`
/// finding's first record, the artifact that changed, also links to what changed.
pub(crate) fn finding_evidence(f: &aims_model::Finding, named: &Named) -> Markup {
    html! {
        @if !f.evidence.is_empty() {
            p.muted.evidence {
                "Evidence: "
                @for (i, r) in f.evidence.iter().enumerate() {
                    @if i > 0 { " · " }
                    @match named.get(r.as_str()) {
                        Some((kind, locator)) => {
                            (kind) " "
                            a.mono href={ "/evidence/" (r) } title=(locator) { (display::short_locator(locator)) }
                        },
                        None => a.mono href={ "/evidence/" (r) } { (r.as_str().chars().take(12).collect::<String>()) "…" },
                    }
                    @if i == 0 && f.kind == FindingKind::Changed {
                        " (" a.what-changed href={ "/evidence/" (r) "#changes" } { "what changed" } ")"
                    }
                }
            }
        }
    }
}

/// `GET /systems/{id}`.
pub async fn system_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let principal = match viewer(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // An admin's session gets the write forms; a form post's outcome is shown once.
    let (forms, clear_flash) = crate::forms::form_state(&state, &headers, &principal);
    let mut resp = match render_system(&state, &id, &forms).await {
        Ok(m) => m.into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(c) = clear_flash.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

async fn render_system(
    state: &AppState,
    id: &str,
    forms: &crate::forms::FormState,
) -> Result<Response, ApiError> {
    crate::assess::flush(state).await?;
    let Some(controls) = crate::assess::controls_of(state, id).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            page("Not found", html! { h1 { "No AI system " code { (id) } } }),
        )
            .into_response());
    };
    let now = Timestamp::now();
    let findings = state.store.findings(Some(id)).await?;
    let days = crate::trend::system_days(state, id, now).await?;
    let mut history = state.store.history(id).await?;
    let named = named_records(
        &findings,
        history
            .iter()
            .map(|e| (&e.record_id, &e.record.kind, &e.record.locator)),
    );
    history.reverse();
    let total = history.len();
    history.truncate(500);
    Ok(page(
        id,
        html! {
            h1 { "AI system " code { (id) } }
            (crate::forms::flash_notice(forms))
            (legend())
            section.charts {
                @if let Some(days) = &days { (trend_section("trend", id, days)) }
                (findings_by_kind(&findings))
            }
            h2 { "Controls" }
            p #maturity-summary { (display::maturity_sentence(state.catalog.maturity(), display::maturity_of(&controls))) }
            table #controls {
                thead { tr { th { "Control" } th { "Status" } th { "Why" } th { "Current evidence" } } }
                tbody { @for v in &controls { (control_row(id, v, now)) } }
            }
            h2 #findings { "Findings (" (findings.len()) ")" }
            @if findings.is_empty() { p { "No open findings." } }
            @for f in &findings {
                div class={ "finding " (f.kind.as_str()) } data-kind=(f.kind.as_str()) {
                    strong { (f.kind.as_str()) } " · " (f.controls.join(", ")) " · since " (display::when(f.since, now))
                    p { (f.message) }
                    (finding_evidence(f, &named))
                    (crate::forms::finding_form(forms, id, f, now))
                }
            }
            (crate::forms::system_forms(state, forms, id))
            h2 #evidence { "Evidence (" (total) " records, newest first)" }
            table {
                thead { tr { th { "Observed" } th { "Kind" } th { "Event" } th { "Artifact" } th { "SHA-256" } th { "Leaf" } } }
                tbody {
                    @for e in &history {
                        tr {
                            td { (display::when(e.record.observed_at, now)) }
                            td { (e.record.kind) }
                            td { (e.record.event.as_str()) }
                            td { (display::locator(&e.record.locator, Some(&format!("/evidence/{}", e.record_id)))) }
                            td.mono { (e.record.sha256) }
                            td { (e.leaf_index) }
                        }
                    }
                }
            }
            @if total > history.len() { p.muted { "Showing the newest " (history.len()) " of " (total) "." } }
        },
    )
    .into_response())
}
