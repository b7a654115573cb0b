//! The auditor workspace (issue 16 item 6, DESIGN §12.5), for auditor and admin sessions; a
//! viewer gets a 403 page.
//!
//! - `GET /audit[?from=YYYY-MM-DD&to=YYYY-MM-DD&system=ID]`: the period report (by default the
//!   last 90 days, both days included), computed by the same function as `GET /v1/report`;
//!   download links for the period bundle, its OSCAL assessment results, the report as CSV and
//!   JSON and the evidence population; the trust policy to pin and the `aims-verify` command.
//! - `GET /audit/check?sha256=HEX`: whether any record in the ledger has content with that
//!   SHA-256, and where (system, locator, leaf, receipt, record page).
//! - `GET /audit/population.csv[?from=&to=][&system=]`: every evidence record (confirmations are
//!   not records), or those received in the period (of one system), one CSV row each, streamed
//!   in pages of
//!   [`POPULATION_PAGE`] ledger rows so memory stays bounded whatever the ledger's size. The rows
//!   stop at the ledger size when the download started, so the file is one consistent snapshot.
//!   Values are written as the ledger holds them (quoted per RFC 4180, never altered), so they
//!   compare byte for byte with an exported bundle.
//!
//! The download links go to `/v1` routes, which accept the dashboard session cookie on `GET`
//! (see `auth.rs`), so they work from the browser of an auditor who signed in. Dates are days in
//! UTC; a period runs from the start of `from` to the end of `to` (capped at now).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;

use aims_catalog::history::PeriodReport;
use aims_model::Timestamp;

use crate::AppState;
use crate::auth::Principal;
use crate::dashboard::{page, status_label, viewer};
use crate::display::{self, when};
use crate::error::ApiError;

/// The default period: this many days back from today.
pub const DEFAULT_PERIOD_DAYS: i64 = 90;

/// Ledger rows read per page of the population download.
pub const POPULATION_PAGE: u64 = 1000;

/// Records listed at most by the file check.
const CHECK_LIMIT: u32 = 100;

/// Query of `/audit` and `/audit/population.csv`.
#[derive(Debug, Default, Deserialize)]
pub struct PeriodForm {
    from: Option<String>,
    to: Option<String>,
    system: Option<String>,
}

/// Query of `/audit/check`.
#[derive(Debug, Default, Deserialize)]
pub struct CheckForm {
    sha256: Option<String>,
}

/// The session's principal when it may use the workspace (auditor or admin), else the sign-in
/// page or a 403 page saying who may.
async fn auditor(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let p = viewer(state, headers).await?;
    if p.role.can_export() {
        return Ok(p);
    }
    Err((
        StatusCode::FORBIDDEN,
        page(
            "Forbidden",
            html! {
                h1 { "Auditor workspace" }
                p.error { "The auditor workspace is for auditor and admin tokens; this session's token is a "
                    (p.role.as_str()) "'s. Sign in with an auditor token to download evidence." }
                p { a href="/" { "← Dashboard" } }
            },
        ),
    )
        .into_response())
}

/// A period chosen as days, resolved to instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// First day (UTC).
    pub from_day: NaiveDate,
    /// Last day (UTC), included.
    pub to_day: NaiveDate,
    /// Start of `from_day`.
    pub from: Timestamp,
    /// End of `to_day`, capped at now.
    pub to: Timestamp,
}

fn parse_day(name: &str, value: Option<&str>) -> Result<Option<NaiveDate>, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{name}: {v:?} is not a date such as 2026-12-07 (YYYY-MM-DD)")),
    }
}

fn midnight(d: NaiveDate) -> Result<Timestamp, String> {
    d.and_hms_opt(0, 0, 0)
        .map(|t| Timestamp::from_datetime(t.and_utc()))
        .ok_or_else(|| format!("{d} has no midnight"))
}

/// The period of the form (default: the last [`DEFAULT_PERIOD_DAYS`] days up to today),
/// checked by the same rules as the API's `from`/`to`; the error names the field.
pub fn resolve_period(
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> Result<Period, String> {
    let today = now.as_datetime().date_naive();
    let to_day = parse_day("to", to)?.unwrap_or(today);
    let from_day = match parse_day("from", from)? {
        Some(d) => d,
        None => to_day
            .checked_sub_days(chrono::Days::new(DEFAULT_PERIOD_DAYS as u64))
            .ok_or_else(|| "to: too early".to_owned())?,
    };
    if from_day > to_day {
        return Err(format!("from: {from_day} is after to ({to_day})"));
    }
    let end = to_day
        .checked_add_days(chrono::Days::new(1))
        .ok_or_else(|| "to: too late".to_owned())?;
    let (from, to) = crate::history::parse_period(
        &midnight(from_day)?.to_string(),
        Some(&midnight(end)?.to_string()),
        now,
    )
    .map_err(|e| e.message().to_owned())?;
    Ok(Period {
        from_day,
        to_day,
        from,
        to,
    })
}

fn period_form(from: &str, to: &str, system: &str) -> Markup {
    html! {
        form #period method="get" action="/audit" {
            label for="from" { "From " } input #from type="date" name="from" value=(from) required;
            " " label for="to" { "to " } input #to type="date" name="to" value=(to) required;
            " " label for="system" { "AI system (optional) " } input #system type="text" name="system" value=(system) size="20";
            " " button type="submit" { "Show the period" }
        }
    }
}

fn check_form(value: &str) -> Markup {
    html! {
        form #check method="get" action="/audit/check" {
            label for="sha256" { "SHA-256 of the file " }
            input #sha256 type="text" name="sha256" value=(value) size="70" maxlength="200"
                autocomplete="off" spellcheck="false" required;
            " " button type="submit" { "Check" }
        }
        p.muted {
            "Compute it with " code { "sha256sum FILE" } " (Linux), " code { "shasum -a 256 FILE" }
            " (macOS) or " code { "Get-FileHash FILE" } " (PowerShell)."
        }
    }
}

fn report_table(report: &PeriodReport, now: Timestamp) -> Markup {
    html! {
        table #report {
            thead { tr { th { "AI system" } th { "Control" } th { "Fresh ratio" } th { "Worst status" } th { "Gaps (not fresh), with reasons" } } }
            tbody {
                @for s in &report.systems {
                    @for c in &s.controls {
                        tr data-system=(s.system) data-control=(c.control) {
                            th { a href={ "/systems/" (s.system) } { (s.system) } }
                            td { a href={ "/systems/" (s.system) "/controls/" (c.control) } { (c.control) } }
                            td { (crate::charts::percent(c.fresh_ratio)) }
                            td class={ "st " (c.worst_status.as_str()) } { (status_label(c.worst_status)) }
                            td {
                                @if c.gaps.is_empty() { "none" }
                                @else {
                                    ul {
                                        @for g in &c.gaps {
                                            li {
                                                strong { (status_label(g.status)) } " from " (when(g.from, now)) " to " (when(g.to, now)) ": " (g.reason)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /audit`.
pub async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PeriodForm>,
) -> Response {
    if let Err(r) = auditor(&state, &headers).await {
        return r;
    }
    match render_audit(&state, &q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render_audit(state: &AppState, q: &PeriodForm) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    let system = q.system.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let period = resolve_period(q.from.as_deref(), q.to.as_deref(), now).and_then(|p| {
        if let Some(s) = system {
            aims_model::record::validate_ident("system", s).map_err(|e| e.to_string())?;
        }
        Ok(p)
    });
    let form_from = q.from.clone().unwrap_or_default();
    let form_to = q.to.clone().unwrap_or_default();
    let period = match period {
        Ok(p) => p,
        Err(why) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                page(
                    "Auditor workspace",
                    html! {
                        h1 { "Auditor workspace" }
                        p.error #period-error { (why) }
                        (period_form(&form_from, &form_to, system.unwrap_or("")))
                    },
                ),
            )
                .into_response());
        }
    };
    crate::assess::flush(state).await?;
    let report = match crate::history::period_report(state, system, period.from, period.to).await {
        Ok(r) => r,
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            return Ok((
                StatusCode::NOT_FOUND,
                page(
                    "Auditor workspace",
                    html! {
                        h1 { "Auditor workspace" }
                        p.error #period-error { (e.message()) }
                        (period_form(&period.from_day.to_string(), &period.to_day.to_string(), system.unwrap_or("")))
                    },
                ),
            )
                .into_response());
        }
        Err(e) => return Err(e),
    };
    let mut api = vec![
        ("from", period.from.to_string()),
        ("to", period.to.to_string()),
    ];
    if let Some(s) = system {
        api.push(("system", s.to_owned()));
    }
    let mut csv = api.clone();
    csv.push(("format", "csv".to_owned()));
    let mut days = vec![
        ("from", period.from_day.to_string()),
        ("to", period.to_day.to_string()),
    ];
    if let Some(s) = system {
        days.push(("system", s.to_owned()));
    }
    let policy = state.keys.trust_policy();
    let rows: usize = report.systems.iter().map(|s| s.controls.len()).sum();
    Ok(page(
        "Auditor workspace",
        html! {
            p { a href="/" { "← Dashboard" } }
            h1 { "Auditor workspace" }
            (period_form(&period.from_day.to_string(), &period.to_day.to_string(), system.unwrap_or("")))
            p.summary #period-summary {
                "Period " (period.from_day) " to " (period.to_day) " (UTC, both days included): from "
                time datetime=(period.from.to_string()) { (period.from) } " to "
                time datetime=(period.to.to_string()) { (period.to) } "."
            }
            h2 #downloads { "Downloads for this period" }
            ul {
                li { a #bundle-link href={ "/v1/export?" (crate::http_util::query(&api)) } download="bundle.tar.gz" { "Period bundle" }
                    " (bundle.tar.gz: the entries, proofs, checkpoints and " code { "report/period.json" } ", verifiable offline)" }
                li { a #oscal-link href={ "/v1/export/oscal?" (crate::http_util::query(&api)) } download="assessment-results.json" { "OSCAL assessment results" } " (JSON)" }
                li { a #report-csv-link href={ "/v1/report?" (crate::http_util::query(&csv)) } download="period-report.csv" { "Period report as CSV" }
                    " · " a href={ "/v1/report?" (crate::http_util::query(&api)) } download="period-report.json" { "as JSON" } }
                li { a #population-link href={ "/audit/population.csv?" (crate::http_util::query(&days)) } download="population.csv" { "Evidence population of the period" }
                    " (every record received in the period" @if system.is_some() { " for this system" } ", CSV) · " a href="/audit/population.csv" download="population.csv" { "of the whole ledger" } }
            }
            h2 #verify { "Verify the bundle offline" }
            p { "Pin this trust policy (compare it with the one the server's operator gives you out of band, "
                code { "aims-server keys show" } "), save it as " code { "policy.txt" } ", then run:" }
            pre.policy #policy { (policy) }
            pre.policy #verify-command { "aims-verify bundle.tar.gz --trust policy.txt" }
            p.muted { "Exit 0: verified, and the period report recomputed from the bundled entries matches. Exit 1 names the first failure or difference. Exit 2: usage or I/O error." }
            h2 #check-a-file { "Check a file" }
            p { "Is a file you hold in the ledger? Give its SHA-256." }
            (check_form(""))
            h2 #period-report { "Period report (" (rows) " rows)" }
            p.muted { "Fresh ratio: the share of the period's applicable time the control was fresh (not applicable and excluded time left out). Gaps: every interval that was stale, drifted or missing." }
            (report_table(&report, now))
        },
    )
    .into_response())
}

/// What `sha256` is when it is a SHA-256 (64 hex digits, any case, spaces around ignored): the
/// lowercase digest; else why not.
pub fn parse_sha256(input: &str) -> Result<String, String> {
    let v = input.trim();
    // `sha256sum` prints `HASH  FILE`: take the first word.
    let v = v.split_whitespace().next().unwrap_or("");
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(v.to_ascii_lowercase());
    }
    let n = v.chars().count();
    Err(if n == 64 {
        "Not a SHA-256: it must be 64 hexadecimal characters (0–9, a–f), and this has other characters.".to_owned()
    } else {
        format!("Not a SHA-256: it must be 64 hexadecimal characters (0–9, a–f); this has {n}.")
    })
}

/// `GET /audit/check?sha256=HEX`.
pub async fn check_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CheckForm>,
) -> Response {
    if let Err(r) = auditor(&state, &headers).await {
        return r;
    }
    let input = q.sha256.unwrap_or_default();
    // Only so much of what was typed is echoed back.
    let echo: String = input.trim().chars().take(80).collect();
    let digest = match parse_sha256(&input) {
        Ok(d) => d,
        Err(why) => {
            return (
                StatusCode::BAD_REQUEST,
                page(
                    "Check a file",
                    html! {
                        p { a href="/audit" { "← Auditor workspace" } }
                        h1 { "Check a file" }
                        p.error #check-result data-found="invalid" { (why) }
                        (check_form(&echo))
                    },
                ),
            )
                .into_response();
        }
    };
    let found = match state.store.evidence_by_sha256(&digest, CHECK_LIMIT).await {
        Ok(f) => f,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let now = Timestamp::now();
    page(
        "Check a file",
        html! {
            p { a href="/audit" { "← Auditor workspace" } }
            h1 { "Check a file" }
            (check_form(&digest))
            @if found.is_empty() {
                p.summary #check-result data-found="no" {
                    strong { "Not found." } " No record in the ledger has content with SHA-256 " code { (digest) } "."
                }
            } @else {
                p.summary #check-result data-found="yes" {
                    strong { "Found." } " " (found.len()) @if found.len() as u32 == CHECK_LIMIT { " or more" }
                    " record" @if found.len() != 1 { "s" } " in the ledger have content with SHA-256 " code { (digest) } ":"
                }
                table #check-records {
                    thead { tr { th { "AI system" } th { "Kind" } th { "Event" } th { "Artifact" } th { "Ledger leaf" } th { "Received" } th { "Record" } } }
                    tbody {
                        @for e in &found {
                            tr {
                                td { a href={ "/systems/" (e.record.system) } { (e.record.system) } }
                                td { (e.record.kind) }
                                td { (e.record.event.as_str()) }
                                td { (display::locator(&e.record.locator, None)) }
                                td { (e.leaf_index) " · " a href={ "/v1/evidence/" (e.record_id) "/proof" } { "inclusion proof" } }
                                td { (when(e.received_at, now)) }
                                td { a.mono href={ "/evidence/" (e.record_id) } { (&e.record_id.as_str()[..12]) "…" } }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// One population row of a ledger row, `None` for a confirmation, a record received outside
/// `period` or one of another system than `system`.
fn population_row(
    r: &aims_store::EntryRow,
    period: Option<(Timestamp, Timestamp)>,
    system: Option<&str>,
) -> Option<String> {
    use crate::history::csv_field;
    if r.event == "confirmed" || system.is_some_and(|s| s != r.system) {
        return None;
    }
    if let Some((from, to)) = period
        && let Ok(t) = Timestamp::parse_utc(&r.received_at)
        && (t < from || t >= to)
    {
        return None;
    }
    Some(format!(
        "{},{},{},{},{},{},{},{},{},{}\n",
        r.index,
        csv_field(&r.received_at),
        csv_field(&r.system),
        csv_field(&r.kind),
        csv_field(&r.event),
        csv_field(&display::short_locator(&r.locator)),
        csv_field(&r.locator),
        csv_field(&r.sha256),
        csv_field(&r.record_id),
        csv_field(&r.agent),
    ))
}

/// The header line of the population CSV.
pub const POPULATION_HEADER: &str =
    "leaf,received_at,system,kind,event,artifact,locator,sha256,record_id,agent\n";

/// `GET /audit/population.csv[?from=YYYY-MM-DD&to=YYYY-MM-DD][&system=ID]`.
pub async fn population_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PeriodForm>,
) -> Response {
    if let Err(r) = auditor(&state, &headers).await {
        return r;
    }
    let now = Timestamp::now();
    let period = if q.from.is_some() || q.to.is_some() {
        match resolve_period(q.from.as_deref(), q.to.as_deref(), now) {
            Ok(p) => Some((p.from, p.to)),
            Err(why) => return ApiError::bad_request("invalid_query", why).into_response(),
        }
    } else {
        None
    };
    let system = q
        .system
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let end = match state.store.tree_size().await {
        Ok(n) => n,
        Err(e) => return ApiError::from(e).into_response(),
    };
    struct Cursor {
        state: AppState,
        next: u64,
        end: u64,
        header: bool,
        system: Option<String>,
    }
    let start = Cursor {
        state,
        next: 0,
        end,
        header: false,
        system,
    };
    let stream = futures_util::stream::unfold(start, move |mut c| async move {
        if !c.header {
            c.header = true;
            return Some((Ok(POPULATION_HEADER.to_owned()), c));
        }
        if c.next >= c.end {
            return None;
        }
        let limit = POPULATION_PAGE.min(c.end - c.next);
        match c.state.store.entry_rows(c.next, limit).await {
            Ok(rows) => {
                let last = rows.last()?.index;
                c.next = last + 1;
                let chunk: String = rows
                    .iter()
                    .filter_map(|r| population_row(r, period, c.system.as_deref()))
                    .collect();
                Some((Ok(chunk), c))
            }
            Err(e) => {
                // The response has started: the client sees a cut-off download.
                tracing::warn!(error = %e, at = c.next, "population download failed");
                c.next = c.end;
                Some((Err(e), c))
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=population.csv",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_to_the_last_90_days_and_name_bad_fields() {
        let now = Timestamp::parse_utc("2026-12-07T12:00:00Z").unwrap();
        let p = resolve_period(None, None, now).unwrap();
        assert_eq!(p.from_day.to_string(), "2026-09-08");
        assert_eq!(p.to_day.to_string(), "2026-12-07");
        assert_eq!(p.from.to_string(), "2026-09-08T00:00:00.000Z");
        assert_eq!(p.to, now, "the end of today is capped at now");
        let p = resolve_period(Some("2026-10-01"), Some(" 2026-10-31 "), now).unwrap();
        assert_eq!(p.to.to_string(), "2026-11-01T00:00:00.000Z");
        let p = resolve_period(Some(""), Some(""), now).unwrap();
        assert_eq!(
            p.from_day.to_string(),
            "2026-09-08",
            "empty fields are defaults"
        );
        assert!(
            resolve_period(Some("yesterday"), None, now)
                .unwrap_err()
                .starts_with("from:")
        );
        assert!(
            resolve_period(Some("2026-11-02"), Some("2026-11-01"), now)
                .unwrap_err()
                .starts_with("from:")
        );
        assert!(
            resolve_period(Some("2027-01-01"), Some("2027-01-02"), now)
                .unwrap_err()
                .contains("future")
        );
        assert!(
            resolve_period(Some("2019-01-01"), None, now)
                .unwrap_err()
                .contains("five years")
        );
    }

    #[test]
    fn sha256_input_is_validated() {
        let h = "A".repeat(64);
        assert_eq!(parse_sha256(&format!("  {h}  ")).unwrap(), "a".repeat(64));
        assert_eq!(
            parse_sha256(&format!("{}  model/README.md", "b".repeat(64))).unwrap(),
            "b".repeat(64)
        );
        assert!(parse_sha256("abc").unwrap_err().contains("this has 3"));
        assert!(
            parse_sha256(&"g".repeat(64))
                .unwrap_err()
                .contains("other characters")
        );
        assert!(parse_sha256("").unwrap_err().contains("this has 0"));
    }

    #[test]
    fn population_rows_skip_confirmations_and_quote() {
        let row = |event: &str, locator: &str, received: &str| aims_store::EntryRow {
            index: 7,
            record_id: "r".repeat(64),
            leaf_hash: Vec::new(),
            entry: Vec::new(),
            agent: "agent".into(),
            received_at: received.into(),
            source_id: "src".into(),
            locator: locator.into(),
            system: "fraud".into(),
            kind: "model_card".into(),
            event: event.into(),
            sha256: "s".repeat(64),
            observed_at: received.into(),
            prev: None,
        };
        let r = row(
            "observed",
            "git+file:///r/repo#a,\"b\".md",
            "2026-12-01T00:00:00.000Z",
        );
        let line = population_row(&r, None, None).unwrap();
        assert!(
            line.starts_with("7,2026-12-01T00:00:00.000Z,fraud,model_card,observed,\"repo:a,\"\"b\"\".md\",\"git+file:///r/repo#a,\"\"b\"\".md\","),
            "{line}"
        );
        assert!(line.ends_with(",agent\n"), "{line}");
        assert!(population_row(&r, None, Some("fraud")).is_some());
        assert!(population_row(&r, None, Some("other")).is_none());
        assert!(
            population_row(
                &row("confirmed", "", "2026-12-01T00:00:00.000Z"),
                None,
                None
            )
            .is_none()
        );
        let period = Some((
            Timestamp::parse_utc("2026-12-01T00:00:00Z").unwrap(),
            Timestamp::parse_utc("2026-12-02T00:00:00Z").unwrap(),
        ));
        assert!(population_row(&r, period, None).is_some());
        let late = row("observed", "x", "2026-12-02T00:00:00.000Z");
        assert!(
            population_row(&late, period, None).is_none(),
            "the end is excluded"
        );
    }
}
