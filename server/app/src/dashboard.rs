//! The compliance lead's dashboard: server-rendered HTML, no scripts, readable without colour.
//!
//! Every value that came from an artifact or an agent is inserted through maud, which escapes it,
//! so a model card containing `<script>` renders as text. Pages need a read-capable token, given
//! once at `/login` (or as `/?token=…`, which sets the cookie and redirects to a clean URL).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use aims_model::ControlStatus;
use aims_model::wire::ControlView;

use crate::AppState;
use crate::auth::{COOKIE, Principal, authenticate, cookie_token};
use crate::error::ApiError;

const CSS: &str = r#"
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
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem;word-break:break-all}
.legend span{display:inline-block;padding:.15rem .5rem;margin-right:.4rem;border-radius:3px;font-size:.8rem}
.finding{background:#fff;border-left:4px solid #8f1d14;padding:.5rem .8rem;margin:.5rem 0}
.finding.stale{border-color:#c98a00}.finding.missing{border-color:#4b2a85}.finding.gone{border-color:#555}
.muted{color:#5d6875;font-size:.85rem}
"#;

fn page(title: &str, body: Markup) -> Markup {
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
                }
                main { (body) }
            }
        }
    }
}

fn status_label(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Fresh => "fresh",
        ControlStatus::Stale => "stale",
        ControlStatus::Drifted => "drifted",
        ControlStatus::Missing => "missing",
        ControlStatus::NotApplicable => "n/a",
    }
}

fn legend() -> Markup {
    html! {
        p.legend {
            @for s in [ControlStatus::Fresh, ControlStatus::Stale, ControlStatus::Drifted, ControlStatus::Missing, ControlStatus::NotApplicable] {
                span class=(s.as_str()) { (status_label(s)) }
            }
        }
    }
}

/// Resolves the browser's cookie to a reader, or sends it to the login page.
async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(token) = cookie_token(headers) else {
        return Err(Redirect::to("/login").into_response());
    };
    match authenticate(state, &token).await {
        Ok(p) if p.role.can_read() => Ok(p),
        Ok(_) => Err(login_page(Some(
            "This token cannot read the dashboard; use a viewer or auditor token.",
        ))
        .into_response()),
        Err(_) => {
            Err(login_page(Some("That token is unknown, expired or revoked.")).into_response())
        }
    }
}

fn login_page(error: Option<&str>) -> (StatusCode, Markup) {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
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
}

fn set_cookie_and_redirect(token: &str, to: &str) -> Response {
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
    (
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, to.to_owned()),
        ],
        StatusCode::SEE_OTHER,
    )
        .into_response()
}

/// `GET /login`.
pub async fn get_login() -> impl IntoResponse {
    login_page(None)
}

/// Form body of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`.
pub async fn post_login(
    State(state): State<AppState>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let token = form.token.trim();
    match authenticate(&state, token).await {
        Ok(p) if p.role.can_read() => set_cookie_and_redirect(token, "/"),
        Ok(_) => login_page(Some(
            "This token cannot read the dashboard; use a viewer or auditor token.",
        ))
        .into_response(),
        Err(_) => login_page(Some("That token is unknown, expired or revoked.")).into_response(),
    }
}

/// `GET /logout`.
pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/login".to_owned()),
        ],
        StatusCode::SEE_OTHER,
    )
        .into_response()
}

/// `GET /`: systems × A.6/A.7 controls.
pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(token) = q.token {
        // Only local paths, so the parameter cannot send a browser elsewhere.
        let next = q
            .next
            .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'));
        return set_cookie_and_redirect(&token, next.as_deref().unwrap_or("/"));
    }
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    match render_index(&state).await {
        Ok(m) => m.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn render_index(state: &AppState) -> Result<Markup, ApiError> {
    crate::assess::flush(state).await?;
    let systems = state.store.systems().await?;
    let controls = state.catalog.dashboard_controls();
    let mut rows = Vec::new();
    for s in &systems {
        let views = state
            .store
            .system_controls(&s.id)
            .await?
            .unwrap_or_default();
        rows.push((s, views));
    }
    let checkpoint = state.store.latest_checkpoint().await?;
    Ok(page(
        "Dashboard",
        html! {
            h1 { "AI systems × Annex A.6 / A.7 controls" }
            (legend())
            @if systems.is_empty() {
                p { "No evidence yet. Point an agent at this server (" code { "aims-agent once --config agent.yaml" } ")." }
            } @else {
                table #grid {
                    thead { tr {
                        th { "AI system" }
                        @for c in &controls { th.ctl title=(c.title) { (c.id) } }
                        th { "fresh" } th { "stale" } th { "drifted" } th { "missing" }
                    } }
                    tbody {
                        @for (s, views) in &rows {
                            tr data-system=(s.id) {
                                th { a href={ "/systems/" (s.id) } { (s.id) } }
                                @for c in &controls {
                                    @let v = views.iter().find(|v| v.control == c.id);
                                    @let st = v.map_or(ControlStatus::NotApplicable, |v| v.status);
                                    td class={ "st " (st.as_str()) } data-control=(c.id)
                                        title=(v.map_or(String::new(), |v| format!("{} {}: {}", c.id, c.title, v.reason))) {
                                        (status_label(st))
                                    }
                                }
                                // Totals of the cells shown, not of every assessed control.
                                @let shown = shown_counts(&controls, views);
                                td { (shown.fresh) } td { (shown.stale) }
                                td { (shown.drifted) } td { (shown.missing) }
                            }
                        }
                    }
                }
            }
            p.muted {
                "Catalog " (state.catalog.version()) " · ledger size "
                (checkpoint.as_ref().map_or(0, |c| c.size))
                " · " a href="/v1/log/checkpoint" { "signed checkpoint" }
                " · " a href="/logout" { "sign out" }
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

fn control_row(v: &ControlView) -> Markup {
    html! {
        tr data-control=(v.control) {
            td { strong { (v.control) } br; span.muted { (v.title) } }
            td class={ "st " (v.status.as_str()) } { (status_label(v.status)) }
            td { (v.reason) }
            td {
                @for e in v.evidence.iter().take(5) {
                    a.mono href={ "/evidence/" (e.record_id) } { (e.kind) ": " (e.locator) } br;
                }
                @if v.evidence.len() > 5 { span.muted { "+" (v.evidence.len() - 5) " more" } }
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
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    match render_system(&state, &id).await {
        Ok(m) => m.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn render_system(state: &AppState, id: &str) -> Result<Response, ApiError> {
    crate::assess::flush(state).await?;
    let Some(controls) = crate::assess::controls_of(state, id).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            page("Not found", html! { h1 { "No AI system " code { (id) } } }),
        )
            .into_response());
    };
    let findings = state.store.findings(Some(id)).await?;
    let mut history = state.store.history(id).await?;
    history.reverse();
    let total = history.len();
    history.truncate(500);
    Ok(page(
        id,
        html! {
            h1 { "AI system " code { (id) } }
            (legend())
            h2 { "Controls" }
            table #controls {
                thead { tr { th { "Control" } th { "Status" } th { "Why" } th { "Current evidence" } } }
                tbody { @for v in &controls { (control_row(v)) } }
            }
            h2 #findings { "Findings (" (findings.len()) ")" }
            @if findings.is_empty() { p { "No open findings." } }
            @for f in &findings {
                div class={ "finding " (f.kind.as_str()) } data-kind=(f.kind.as_str()) {
                    strong { (f.kind.as_str()) } " · " (f.controls.join(", ")) " · since " (f.since)
                    p { (f.message) }
                }
            }
            h2 #evidence { "Evidence (" (total) " records, newest first)" }
            table {
                thead { tr { th { "Observed" } th { "Kind" } th { "Event" } th { "Locator" } th { "SHA-256" } th { "Leaf" } } }
                tbody {
                    @for e in &history {
                        tr {
                            td.mono { (e.record.observed_at) }
                            td { (e.record.kind) }
                            td { (e.record.event.as_str()) }
                            td.mono { a href={ "/evidence/" (e.record_id) } { (e.record.locator) } }
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

/// `GET /evidence/{record_id}`.
pub async fn evidence_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    let ev = match state.store.evidence(&id).await {
        Ok(Some(ev)) => ev,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                page(
                    "Not found",
                    html! { h1 { "No evidence record " code { (id) } } },
                ),
            )
                .into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let pretty = serde_json::to_string_pretty(&ev.record).unwrap_or_default();
    page(
        "Evidence",
        html! {
            h1 { "Evidence " code { (ev.record_id) } }
            table {
                tr { th { "AI system" } td { a href={ "/systems/" (ev.record.system) } { (ev.record.system) } } }
                tr { th { "Kind" } td { (ev.record.kind) } }
                tr { th { "Locator" } td.mono { (ev.record.locator) } }
                tr { th { "SHA-256" } td.mono { (ev.record.sha256) } }
                tr { th { "Size" } td { (ev.record.size) " bytes" } }
                tr { th { "Observed" } td { (ev.record.observed_at) } }
                tr { th { "Artifact time" } td { (ev.record.artifact_time.map(|t| t.to_string()).unwrap_or_else(|| "—".into())) } }
                tr { th { "Ledger leaf" } td { (ev.leaf_index) " (received " (ev.received_at) " from " (ev.agent) ")" } }
                tr { th { "Proof" } td { a href={ "/v1/evidence/" (ev.record_id) "/proof" } { "tlog-proof receipt" } } }
            }
            h2 { "Record" }
            pre.mono { (pretty) }
        },
    )
    .into_response()
}
