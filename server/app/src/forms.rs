//! The dashboard's write forms (issue 14), shown to admins on the system page `/systems/{id}`:
//!
//! - `POST /systems/{id}/applicability`: a control (or a whole objective) not applicable with a
//!   justification, or applicable again ([`crate::applicability::set_statements`]);
//! - `POST /systems/{id}/uploads` (`multipart/form-data`): manual evidence with its kind and
//!   optional name, artifact date and expiry ([`crate::uploads::store_upload`]);
//! - `POST /systems/{id}/acknowledge`: accept the risk of an open finding with a reason until a
//!   date at most 365 days ahead ([`crate::manual::acknowledge`]).
//!
//! Each runs the same function as its `/v1` API route, so the checks, the ledger record and the
//! limits are the API's. A post must come from this site, carry the session's form token
//! (`csrf.rs`) and be an admin's session; otherwise it is refused with a 403 page and nothing is
//! written. After a post the browser is sent back (303) to the system page, which shows what
//! happened once: the outcome travels in a short-lived cookie bound to the session by an HMAC,
//! so no other site or session can put words on the page.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::{Markup, html};

use aims_model::acknowledgement::{AcknowledgeRequest, MAX_ACKNOWLEDGE_DAYS};
use aims_model::applicability::Applicability;
use aims_model::{Finding, Timestamp};

use crate::AppState;
use crate::auth::{self, Principal};
use crate::csrf;
use crate::dashboard::page;
use crate::error::ApiError;
use crate::http_util::{cross_site_refusal, media_type_is};

/// Name of the outcome cookie over plain HTTP (`__Host-` prefixed under TLS, like the session).
const FLASH_COOKIE: &str = "aims_flash";
/// How long an outcome waits to be shown (seconds).
const FLASH_SECS: u32 = 120;
/// Longest text field a form takes (bytes); justifications and reasons are bounded further by
/// the model.
const MAX_FIELD_BYTES: usize = 16 * 1024;
/// Most text fields an upload form may carry before its file.
const MAX_FIELDS: usize = 16;
/// Room for an upload form's text fields and multipart framing besides the file.
const FORM_OVERHEAD_BYTES: u64 = 64 * 1024;

/// What the system page needs to offer the forms and say how the last post went.
#[derive(Clone, Debug, Default)]
pub struct FormState {
    /// The session's form token, when the viewer is an admin signed in with a session.
    pub token: Option<String>,
    /// The outcome of the last post, shown once.
    pub flash: Option<Flash>,
}

/// The outcome of a form post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// Whether it was saved.
    pub ok: bool,
    /// What to tell the person.
    pub text: String,
}

fn flash_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-aims_flash"
    } else {
        FLASH_COOKIE
    }
}

fn flash_mac(state: &AppState, session: &str, ok: bool, text: &str) -> [u8; 32] {
    crate::keys::hmac_sha256(
        state.keys.form_key(),
        &[
            b"aims-evidence form outcome v1\n",
            session.as_bytes(),
            b"\n",
            if ok { &b"ok"[..] } else { &b"error"[..] },
            b"\n",
            text.as_bytes(),
        ],
    )
}

/// The `Set-Cookie` value carrying `flash` for `session` (empty `value` and age 0 clear it).
fn flash_set_cookie(state: &AppState, session: &str, flash: Option<&Flash>) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (value, age) = match flash {
        Some(f) => (
            format!(
                "{}.{}.{}",
                if f.ok { "ok" } else { "error" },
                b64.encode(f.text.as_bytes()),
                b64.encode(flash_mac(state, session, f.ok, &f.text))
            ),
            FLASH_SECS,
        ),
        None => (String::new(), 0),
    };
    let secure = if state.tls { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}",
        flash_cookie_name(state.tls)
    )
}

/// The outcome cookie of the request, if it is present and was made for `session`.
fn read_flash(state: &AppState, headers: &HeaderMap, session: &str) -> Option<Flash> {
    let name = flash_cookie_name(state.tls);
    let raw = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = raw.split('.');
    let ok = match parts.next()? {
        "ok" => true,
        "error" => false,
        _ => return None,
    };
    let text = String::from_utf8(b64.decode(parts.next()?).ok()?).ok()?;
    let mac = b64.decode(parts.next()?).ok()?;
    let expected = flash_mac(state, session, ok, &text);
    use subtle::ConstantTimeEq;
    bool::from(expected.as_slice().ct_eq(&mac)).then_some(Flash { ok, text })
}

/// The forms' state for a page request by `principal`, whom the page already authenticated from
/// these headers: the token when that was an admin's session (not a bearer header), and the
/// outcome of the last post (with the `Set-Cookie` value that clears it, to send with the page).
pub fn form_state(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
) -> (FormState, Option<String>) {
    if auth::bearer(headers).is_some() {
        return (FormState::default(), None);
    }
    let Some(session) = auth::session_cookie(headers, state.tls) else {
        return (FormState::default(), None);
    };
    let token = (principal.role == aims_store::Role::Admin)
        .then(|| csrf::form_token(state.keys.form_key(), &session));
    let flash = read_flash(state, headers, &session);
    let clear = flash
        .is_some()
        .then(|| flash_set_cookie(state, &session, None));
    (FormState { token, flash }, clear)
}

/// A form post refused before anything was considered: the status and why.
pub struct Refusal {
    status: StatusCode,
    text: &'static str,
}

fn refusal(status: StatusCode, text: &'static str) -> Refusal {
    Refusal { status, text }
}

/// The refusal page: nothing was saved, and why.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            page(
                "Not saved",
                html! {
                    h1 { "Not saved" }
                    p.error #form-refusal { (self.text) }
                    p { a href="/" { "Back to the dashboard" } }
                },
            ),
        )
            .into_response()
    }
}

/// The admin session of a form post from this site, or the refusal page. The form token is
/// checked separately ([`check_token`]) once the body is read.
async fn admin_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, Principal), Refusal> {
    if let Some(why) = cross_site_refusal(headers) {
        tracing::info!(reason = why, "refused a cross-site form post");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "This form was not submitted from this site, so it was not saved.",
        ));
    }
    let session = match auth::session_of(state, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                "Forms need a dashboard session: sign in at /login. Scripts use the /v1 API with \
                 an Authorization header instead.",
            ));
        }
        Err(_) => {
            return Err(refusal(
                StatusCode::UNAUTHORIZED,
                "Your session has ended (expired, signed out or its token revoked). Sign in \
                 again.",
            ));
        }
    };
    if session.1.role != aims_store::Role::Admin {
        tracing::info!(by = %session.1.name, "refused a form post from a non-admin session");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "Only an admin can change compliance records; this session's token is not an \
             admin's.",
        ));
    }
    Ok(session)
}

/// The form token check, as a refusal page.
fn check_token(state: &AppState, session: &str, sent: Option<&str>) -> Result<(), Refusal> {
    csrf::check_token(state.keys.form_key(), session, sent).map_err(|why| {
        tracing::info!(?why, "refused a form post without its session's token");
        refusal(StatusCode::FORBIDDEN, why.message())
    })
}

/// The 303 back to the system page, carrying the outcome.
fn back(state: &AppState, session: &str, system: &str, flash: Flash) -> Response {
    let to = if aims_model::record::validate_ident("system", system).is_ok() {
        format!("/systems/{}", crate::http_util::path_segment(system))
    } else {
        "/".to_owned()
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, to),
            (
                header::SET_COOKIE,
                flash_set_cookie(state, session, Some(&flash)),
            ),
        ],
    )
        .into_response()
}

fn saved(text: String) -> Flash {
    Flash { ok: true, text }
}

fn not_saved(e: &ApiError) -> Flash {
    Flash {
        ok: false,
        text: format!("Not saved: {}", e.message()),
    }
}

/// The fields of a URL-encoded form post (the last of a repeated name wins), or the refusal.
fn urlencoded(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, Refusal> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| media_type_is(v, "application", "x-www-form-urlencoded"));
    if !form {
        return Err(refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The form must be sent as application/x-www-form-urlencoded.",
        ));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

/// A date field (`YYYY-MM-DD`, from a date input) as the start of that day in UTC; an RFC 3339
/// instant is taken as it is.
fn date_field(field: &str, value: &str) -> Result<Option<Timestamp>, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let bad = |m: String| ApiError::bad_request("invalid_request", m);
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(Some(Timestamp::from_datetime(
            d.and_time(chrono::NaiveTime::MIN).and_utc(),
        )));
    }
    Timestamp::parse_utc(v)
        .map(Some)
        .map_err(|e| bad(format!("{field}: {e} (a date, YYYY-MM-DD)")))
}

/// A URL-encoded form post that passed every check: an admin's session from this site, with
/// the session's token. Its session id, principal and fields.
async fn admin_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Principal, HashMap<String, String>), Refusal> {
    let (session, principal) = admin_session(state, headers).await?;
    let fields = urlencoded(headers, body)?;
    check_token(state, &session, fields.get(csrf::FIELD).map(String::as_str))?;
    Ok((session, principal, fields))
}

/// A URL-encoded form post of an admin's session: checked by [`admin_form`], then `act`, then
/// back to the system's page with what happened.
async fn form_post(
    state: &AppState,
    system: &str,
    headers: &HeaderMap,
    body: &[u8],
    act: impl AsyncFnOnce(&Principal, &HashMap<String, String>) -> Result<Flash, ApiError>,
) -> Response {
    let (session, principal, fields) = match admin_form(state, headers, body).await {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let flash = act(&principal, &fields)
        .await
        .unwrap_or_else(|e| not_saved(&e));
    back(state, &session, system, flash)
}

/// `POST /systems/{id}/applicability` (fields `csrf`, `control` — a control ID or `group:A.10`
/// —, `applicable` = `yes`/`no`, `justification`).
pub async fn post_applicability(
    State(state): State<AppState>,
    Path(system): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    form_post(
        &state,
        &system,
        &headers,
        &body,
        async |principal, fields| set_applicability(&state, principal, &system, fields).await,
    )
    .await
}

async fn set_applicability(
    state: &AppState,
    principal: &Principal,
    system: &str,
    fields: &HashMap<String, String>,
) -> Result<Flash, ApiError> {
    let bad = |m: &str| ApiError::bad_request("invalid_request", m.to_owned());
    let target = fields.get("control").map(|s| s.trim()).unwrap_or("");
    if target.is_empty() {
        return Err(bad("choose a control or an objective"));
    }
    let applicable = match fields.get("applicable").map(String::as_str) {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(bad("choose whether the control applies")),
    };
    let decision = Applicability {
        applicable,
        justification: fields.get("justification").cloned().unwrap_or_default(),
    };
    let (controls, groups) = match target.strip_prefix("group:") {
        Some(g) => (BTreeMap::new(), BTreeMap::from([(g.to_owned(), decision)])),
        None => (
            BTreeMap::from([(target.to_owned(), decision)]),
            BTreeMap::new(),
        ),
    };
    let decisions = crate::applicability::expand_groups(&state.catalog, &controls, &groups)?;
    let out = crate::applicability::set_statements(
        state,
        &principal.name,
        system,
        &decisions,
        Timestamp::now(),
    )
    .await?;
    let what = if applicable {
        "applicable"
    } else {
        "not applicable"
    };
    Ok(saved(match out.written.len() {
        0 => format!("No change: {target} was already recorded as {what} with this justification."),
        1 => format!(
            "Saved: {target} is {what} (ledger leaf {}).",
            out.written[0]
        ),
        n => format!(
            "Saved: {n} controls of {target} are {what} (ledger leaves {}).",
            leaves(&out.written)
        ),
    }))
}

fn leaves(l: &[u64]) -> String {
    l.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// `POST /systems/{id}/acknowledge` (fields `csrf`, `finding`, `reason`, `expires` — a date).
pub async fn post_acknowledge(
    State(state): State<AppState>,
    Path(system): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    form_post(
        &state,
        &system,
        &headers,
        &body,
        async |principal, fields| accept_risk(&state, principal, &system, fields).await,
    )
    .await
}

async fn accept_risk(
    state: &AppState,
    principal: &Principal,
    system: &str,
    fields: &HashMap<String, String>,
) -> Result<Flash, ApiError> {
    let id = fields.get("finding").map(|s| s.trim()).unwrap_or("");
    let Some(expires_at) = date_field("expires", fields.get("expires").map_or("", |s| s))? else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "expires: choose the date the acceptance ends",
        ));
    };
    let req = AcknowledgeRequest {
        reason: fields.get("reason").cloned().unwrap_or_default(),
        expires_at,
    };
    // The page's own findings only: a finding of another system is not accepted from here.
    crate::assess::flush(state).await?;
    if !state
        .store
        .findings(Some(system))
        .await?
        .iter()
        .any(|f| f.id == id)
    {
        return Err(ApiError::not_found(format!(
            "no open finding {id:?} on this system"
        )));
    }
    let finding: Finding = crate::manual::acknowledge(state, &principal.name, id, &req).await?;
    Ok(saved(format!(
        "Saved: the risk of the {} finding on {} is accepted until {}.",
        finding.kind.as_str(),
        finding.controls.join(", "),
        crate::display::day(expires_at)
    )))
}

/// `POST /systems/{id}/uploads` (`multipart/form-data`: `csrf`, `kind`, optional `name`,
/// `artifact_time` and `expires_at` as dates, then `file`). The text fields must come before
/// the file, as the form orders them, so the token is checked before any byte is stored.
pub async fn post_upload(
    State(state): State<AppState>,
    Path(system): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let (session, principal) = match admin_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let Ok(multipart) = multipart else {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The upload form must be sent as multipart/form-data.",
        )
        .into_response();
    };
    let declared =
        crate::api::declared_length(&headers).map(|l| l.saturating_sub(FORM_OVERHEAD_BYTES));
    let outcome = upload(&state, &session, &principal, &system, declared, multipart).await;
    match outcome {
        Ok(flash) => back(&state, &session, &system, flash),
        Err(Step::Refused(r)) => r.into_response(),
        Err(Step::Failed(e)) => back(&state, &session, &system, not_saved(&e)),
    }
}

/// Why an upload form post stopped.
enum Step {
    /// Refused before anything was considered (the token).
    Refused(Refusal),
    /// Considered and not saved.
    Failed(ApiError),
}

impl From<ApiError> for Step {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::bad_request("invalid_upload", format!("the form could not be read: {e}"))
}

async fn upload(
    state: &AppState,
    session: &str,
    principal: &Principal,
    system: &str,
    declared: Option<u64>,
    mut multipart: Multipart,
) -> Result<Flash, Step> {
    let mut fields: HashMap<String, String> = HashMap::new();
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? else {
            check_token(state, session, fields.get(csrf::FIELD).map(String::as_str))
                .map_err(Step::Refused)?;
            return Err(Step::Failed(ApiError::bad_request(
                "invalid_upload",
                "choose a file to upload",
            )));
        };
        let name = field.name().unwrap_or("").to_owned();
        if name != "file" {
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::bad_request("invalid_upload", "too many form fields").into());
            }
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if text.len() + chunk.len() > MAX_FIELD_BYTES {
                    return Err(ApiError::bad_request(
                        "invalid_upload",
                        format!("{name}: at most {MAX_FIELD_BYTES} bytes"),
                    )
                    .into());
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text).map_err(|_| {
                ApiError::bad_request("invalid_upload", format!("{name}: not UTF-8 text"))
            })?;
            fields.insert(name, text);
            continue;
        }
        // The file: the token first, then the upload's parameters, then its bytes.
        check_token(state, session, fields.get(csrf::FIELD).map(String::as_str))
            .map_err(Step::Refused)?;
        let file_name = field.file_name().unwrap_or("").to_owned();
        let mut q: HashMap<String, String> = HashMap::new();
        q.insert("system".into(), system.to_owned());
        q.insert(
            "kind".into(),
            fields.get("kind").cloned().unwrap_or_default(),
        );
        let given = fields.get("name").map(|s| s.trim()).unwrap_or("");
        let name = if given.is_empty() {
            file_name.as_str()
        } else {
            given
        };
        if name.is_empty() {
            return Err(ApiError::bad_request("invalid_upload", "choose a file to upload").into());
        }
        q.insert("name".into(), name.to_owned());
        for (field_name, key) in [
            ("artifact_time", "artifact_time"),
            ("expires_at", "expires_at"),
        ] {
            if let Some(t) = date_field(field_name, fields.get(field_name).map_or("", |s| s))? {
                q.insert(key.into(), t.to_string());
            }
        }
        let q = crate::uploads::upload_query(state, &q)?;
        crate::uploads::check_declared_length(state, declared)?;
        let stream = futures_util::stream::unfold(field, |mut f| async move {
            match f.chunk().await {
                Ok(Some(c)) => Some((Ok(c), f)),
                Ok(None) => None,
                Err(e) => Some((Err(e), f)),
            }
        });
        let u = crate::uploads::store_upload(state, &principal.name, q, Box::pin(stream)).await?;
        return Ok(saved(format!(
            "Saved: {name} ({} bytes, SHA-256 {}) is recorded as ledger leaf {}.",
            u.size,
            u.sha256,
            u.leaf_index
                .map_or_else(|| "?".to_owned(), |l| l.to_string())
        )));
    }
}

/// The outcome of the last post, when there is one to show.
pub fn flash_notice(forms: &FormState) -> Markup {
    html! {
        @if let Some(f) = &forms.flash {
            p #form-result class=(if f.ok { "notice ok" } else { "notice error" }) role="status" {
                (f.text)
            }
        }
    }
}

/// The admin forms of the system page: statement of applicability and upload.
pub fn system_forms(state: &AppState, forms: &FormState, system: &str) -> Markup {
    let Some(token) = &forms.token else {
        return html! {};
    };
    let path = crate::http_util::path_segment(system);
    let kinds: Vec<&aims_catalog::KindDef> = state
        .catalog
        .kinds()
        .iter()
        .filter(|k| {
            k.name != aims_catalog::UNCLASSIFIED
                && !aims_model::manual::SERVER_KINDS.contains(&k.name.as_str())
        })
        .collect();
    html! {
        h2 #manage { "Manage (admin)" }
        section.forms {
            form #applicability-form method="post" action={ "/systems/" (path) "/applicability" } {
                h3 { "Statement of applicability" }
                input type="hidden" name=(csrf::FIELD) value=(token);
                p {
                    label for="soa-control" { "Control " }
                    select #soa-control name="control" required {
                        @for g in state.catalog.groups() {
                            optgroup label={ (g.id) " " (g.title) } {
                                option value={ "group:" (g.id) } { "All of " (g.id) " (" (g.title) ")" }
                                @for c in state.catalog.controls().iter().filter(|c| c.group == g.id) {
                                    option value=(c.id) { (c.id) " " (c.title) }
                                }
                            }
                        }
                    }
                }
                p {
                    label { input type="radio" name="applicable" value="no" required; " not applicable" }
                    " "
                    label { input type="radio" name="applicable" value="yes"; " applicable again" }
                }
                p {
                    label for="soa-justification" { "Justification (required when not applicable)" } br;
                    textarea #soa-justification name="justification" rows="3" cols="60" {}
                }
                button type="submit" { "Record decision" }
                p.muted { "Each change is a ledger record with your name, the time and the justification." }
            }
            form #upload-form method="post" enctype="multipart/form-data" action={ "/systems/" (path) "/uploads" } {
                h3 { "Upload evidence" }
                input type="hidden" name=(csrf::FIELD) value=(token);
                p {
                    label for="up-kind" { "Kind " }
                    select #up-kind name="kind" required {
                        @for k in &kinds { option value=(k.name) { (k.title) " (" (k.name) ")" } }
                    }
                }
                p {
                    label for="up-name" { "File name (optional; the chosen file's name otherwise) " }
                    input #up-name type="text" name="name" maxlength="255";
                }
                p {
                    label for="up-artifact" { "Document date (optional) " }
                    input #up-artifact type="date" name="artifact_time";
                    " "
                    label for="up-expires" { "Fresh until (optional; the kind's window otherwise) " }
                    input #up-expires type="date" name="expires_at";
                }
                p { input #up-file type="file" name="file" required; }
                button type="submit" { "Upload" }
                p.muted { "Up to " (state.limits.max_upload_bytes / (1024 * 1024)) " MiB. The bytes are kept by their SHA-256 and the upload is a ledger record." }
            }
        }
    }
}

/// The "Accept risk" form of an open finding (or who accepted it, until when and why).
pub fn finding_form(forms: &FormState, system: &str, f: &Finding, now: Timestamp) -> Markup {
    html! {
        @if let Some(a) = &f.acknowledged {
            p.accepted {
                "Risk accepted by " strong { (a.by) } " until " (crate::display::day(a.expires_at)) ": " (a.reason)
            }
        } @else if let Some(token) = &forms.token {
            @let default = now.checked_add_days(90).unwrap_or(now);
            @let max = now.checked_add_days(MAX_ACKNOWLEDGE_DAYS as u32).unwrap_or(now);
            details.accept {
                summary { "Accept risk" }
                form.accept-form method="post" action={ "/systems/" (crate::http_util::path_segment(system)) "/acknowledge" } {
                    input type="hidden" name=(csrf::FIELD) value=(token);
                    input type="hidden" name="finding" value=(f.id);
                    label { "Reason " input type="text" name="reason" size="50" required; }
                    " "
                    label { "until " input type="date" name="expires" required
                        value=(crate::display::day(default)) max=(crate::display::day(max)); }
                    " "
                    button type="submit" { "Accept risk" }
                }
            }
        }
    }
}
