//! Readable identities for the dashboard (issue 16 item 3): short locators, dates with a relative
//! time, and freshness deadlines. Every page that shows a locator or a time goes through here,
//! so the same artifact reads the same everywhere.
//!
//! Nothing is lost by shortening: the full locator stays in a `title` attribute and in a
//! `<code>` the reader can open and copy (a `<details>` element, no script), and the exact UTC
//! time in a `<time datetime>` element's `title`. The helpers return maud markup, so whatever
//! an agent sent is escaped like every other value.

use maud::{Markup, html};

use aims_model::Timestamp;

/// A locator as people name the artifact:
/// - `git+file:///srv/fraud.git#systems/a/card.md` and `git+https://host/org/fraud.git#x` →
///   `fraud:systems/a/card.md` (a trailing `@<commit>` is cut to 7 hex digits);
/// - `github://owner/repo/blob/path` → `owner/repo:path`, other GitHub locators
///   `owner/repo:deployments/7`;
/// - `mlflow://host/models/fraud/aliases/champion` → `mlflow:fraud@champion`, a version
///   `mlflow:fraud/3`, a run's validation `mlflow:run/<8 hex>/validation` and a run's file
///   `mlflow:run/<8 hex>:path` (names percent-decoded);
/// - `file:///a/b/c/d.md` → `file:…/c/d.md`;
/// - `s3://bucket/key` and anything else unchanged.
pub fn short_locator(locator: &str) -> String {
    if let Some(rest) = locator.strip_prefix("git+") {
        return short_git(rest).unwrap_or_else(|| locator.to_owned());
    }
    if let Some(rest) = locator.strip_prefix("github://") {
        return short_github(rest).unwrap_or_else(|| locator.to_owned());
    }
    if let Some(rest) = locator.strip_prefix("mlflow://") {
        return short_mlflow(rest).unwrap_or_else(|| locator.to_owned());
    }
    if let Some(path) = locator.strip_prefix("file://") {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() > 2 {
            return format!("file:…/{}", parts[parts.len() - 2..].join("/"));
        }
    }
    locator.to_owned()
}

fn short_git(rest: &str) -> Option<String> {
    let (repo, path) = rest.split_once('#')?;
    let name = repo
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())?;
    let path = match path.rsplit_once('@') {
        Some((p, commit)) if commit.len() > 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{p}@{}", &commit[..7])
        }
        _ => path.to_owned(),
    };
    Some(format!("{name}:{path}"))
}

fn short_github(rest: &str) -> Option<String> {
    let mut it = rest.splitn(3, '/');
    let (owner, repo, tail) = (it.next()?, it.next()?, it.next()?);
    if owner.is_empty() || repo.is_empty() || tail.is_empty() {
        return None;
    }
    let tail = tail.strip_prefix("blob/").unwrap_or(tail);
    Some(format!("{owner}/{repo}:{tail}"))
}

fn short_mlflow(rest: &str) -> Option<String> {
    // Host, then an optional path prefix of the tracking URI, then the target: match the target
    // from the end so a prefix cannot be mistaken for it.
    let segs: Vec<&str> = rest.split('/').skip(1).collect();
    let n = segs.len();
    if n >= 4 && segs[n - 4] == "models" {
        let model = percent_decode(segs[n - 3]);
        let last = percent_decode(segs[n - 1]);
        match segs[n - 2] {
            "aliases" => return Some(format!("mlflow:{model}@{last}")),
            "versions" => return Some(format!("mlflow:{model}/{last}")),
            _ => {}
        }
    }
    if n >= 3 && segs[n - 3] == "runs" && segs[n - 1] == "validation" {
        return Some(format!("mlflow:run/{}/validation", short_id(segs[n - 2])));
    }
    let at = segs
        .windows(3)
        .position(|w| w[0] == "runs" && w[2] == "artifacts")?;
    let path: Vec<String> = segs[at + 3..].iter().map(|s| percent_decode(s)).collect();
    if path.is_empty() {
        return None;
    }
    Some(format!(
        "mlflow:run/{}:{}",
        short_id(segs[at + 1]),
        path.join("/")
    ))
}

/// The first 8 characters of a run id (all of it when shorter).
fn short_id(id: &str) -> String {
    let id = percent_decode(id);
    id.chars().take(8).collect()
}

/// `%XX` sequences decoded (invalid ones kept as they are); invalid UTF-8 shown as U+FFFD.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A locator for people: the short form (the full one in its `title`), linked to `href` when
/// given, and, when shortening dropped something, a `full` disclosure holding the whole locator
/// in a `<code>` to copy.
pub fn locator(full: &str, href: Option<&str>) -> Markup {
    let short = short_locator(full);
    html! {
        span.loc {
            @match href {
                Some(h) => a.mono href=(h) title=(full) { (short) },
                None => span.mono title=(full) { (short) },
            }
            @if short != full {
                " "
                details.full { summary { "full" } code { (full) } }
            }
        }
    }
}

/// `YYYY-MM-DD` (UTC).
pub fn day(t: Timestamp) -> String {
    t.as_datetime().format("%Y-%m-%d").to_string()
}

/// How far `t` is from `now`: `just now`, `5 minutes ago`, `2 hours ago`, `3 days ago`,
/// `in 30 days`.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_datetime() - t.as_datetime()).num_seconds();
    let (n, past) = (secs.unsigned_abs(), secs >= 0);
    let (count, unit) = match n {
        0..=59 => return "just now".to_owned(),
        60..=3599 => (n / 60, "minute"),
        3600..=86_399 => (n / 3600, "hour"),
        _ => (n / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if past {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

/// A time for people: `2026-12-04 (3 days ago)`, the exact UTC time in `<time datetime>` and in
/// its `title`.
pub fn when(t: Timestamp, now: Timestamp) -> Markup {
    html! {
        time datetime=(t.to_string()) title=(t.to_string()) {
            (day(t)) " (" (relative(t, now)) ")"
        }
    }
}

/// Whole days from `now` to `t` (0 when less than a day remains or `t` has passed).
pub fn days_left(t: Timestamp, now: Timestamp) -> i64 {
    (t.as_datetime() - now.as_datetime()).num_days().max(0)
}

/// `until 2027-01-06 (30 days left)`, the exact instant in `<time>`: what follows the status
/// word `fresh` in a grid cell.
pub fn until(t: Timestamp, now: Timestamp) -> Markup {
    let left = match days_left(t, now) {
        0 => "less than a day left".to_owned(),
        1 => "1 day left".to_owned(),
        d => format!("{d} days left"),
    };
    html! {
        span.until {
            "until " time datetime=(t.to_string()) title=(t.to_string()) { (day(t)) }
            " " span.left { "(" (left) ")" }
        }
    }
}

/// `fresh until 2027-01-06 (30 days left)`.
pub fn fresh_until(t: Timestamp, now: Timestamp) -> Markup {
    html! { "fresh " (until(t, now)) }
}

/// A system's maturity in words (issue 14 item 6): the median and lowest level of its
/// applicable controls, each with its level name from the catalog.
pub fn maturity_sentence(
    model: &aims_catalog::MaturityModel,
    s: Option<aims_catalog::MaturitySummary>,
) -> String {
    match s {
        None => "No control applies to this system, so it has no maturity.".to_owned(),
        Some(s) => format!(
            "Maturity over {} applicable controls: median {} of 5 ({}), lowest {} of 5 ({}).",
            s.applicable,
            s.median,
            model.name(s.median),
            s.min,
            model.name(s.min)
        ),
    }
}

/// The grid's maturity cell: `median M · lowest L` as text, the whole sentence as its title.
pub fn maturity_cell(
    model: &aims_catalog::MaturityModel,
    s: Option<aims_catalog::MaturitySummary>,
) -> Markup {
    html! {
        td.maturity title=(maturity_sentence(model, s)) {
            @match s {
                Some(s) => { "median " strong { (s.median) } " · lowest " (s.min) }
                None => { "n/a" }
            }
        }
    }
}

/// The maturity summary of a system's control views.
pub fn maturity_of(
    views: &[aims_model::wire::ControlView],
) -> Option<aims_catalog::MaturitySummary> {
    aims_catalog::maturity::summarize(views.iter().map(|v| (v.status, v.maturity)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_utc(s).unwrap()
    }

    #[test]
    fn git_locators_become_repo_and_path() {
        assert_eq!(
            short_locator("git+file:///srv/fraud.git#systems/a/card.md"),
            "fraud:systems/a/card.md"
        );
        assert_eq!(
            short_locator("git+file:///tmp/x/pipeline#reports/validation.json"),
            "pipeline:reports/validation.json"
        );
        assert_eq!(
            short_locator("git+https://git.example.org/org/fraud.git/#model/README.md"),
            "fraud:model/README.md"
        );
        assert_eq!(
            short_locator(&format!(
                "git+file:///r/repo#reports/x.json@{}",
                "0123456789abcdef0123456789abcdef01234567"
            )),
            "repo:reports/x.json@0123456"
        );
        // Not the shape a collector writes: shown whole.
        assert_eq!(short_locator("git+file:///r/repo"), "git+file:///r/repo");
    }

    #[test]
    fn github_s3_file_and_other_locators() {
        assert_eq!(
            short_locator("github://acme/fraud/blob/docs/model-card.md"),
            "acme/fraud:docs/model-card.md"
        );
        assert_eq!(
            short_locator("github://acme/fraud/deployments/42"),
            "acme/fraud:deployments/42"
        );
        assert_eq!(
            short_locator("s3://bucket/a/key.json"),
            "s3://bucket/a/key.json"
        );
        assert_eq!(short_locator("file:///a/b/c/d.md"), "file:…/c/d.md");
        assert_eq!(short_locator("file:///d.md"), "file:///d.md");
        assert_eq!(short_locator("manual:decision"), "manual:decision");
        assert_eq!(short_locator(""), "");
    }

    #[test]
    fn mlflow_locators_name_model_alias_version_and_run() {
        assert_eq!(
            short_locator("mlflow://h:5000/models/fraud/aliases/champion"),
            "mlflow:fraud@champion"
        );
        assert_eq!(
            short_locator("mlflow://h:5000/models/fraud/versions/3"),
            "mlflow:fraud/3"
        );
        // A tracking URI with a path prefix, and a percent-encoded name.
        assert_eq!(
            short_locator("mlflow://h/ml/models/fraud%20model/aliases/stage:Production"),
            "mlflow:fraud model@stage:Production"
        );
        assert_eq!(
            short_locator("mlflow://h/runs/0123456789abcdef/validation"),
            "mlflow:run/01234567/validation"
        );
        assert_eq!(
            short_locator("mlflow://h/runs/0123456789abcdef/artifacts/model/README.md"),
            "mlflow:run/01234567:model/README.md"
        );
        assert_eq!(
            short_locator("mlflow://h/experiments/1"),
            "mlflow://h/experiments/1"
        );
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
    }

    #[test]
    fn locator_markup_keeps_the_full_locator_and_escapes() {
        let full = "git+file:///r/repo#x/\"<script>alert(1)</script>.md";
        let html = locator(full, Some("/evidence/abc")).into_string();
        assert!(
            html.contains(">repo:x/&quot;&lt;script&gt;alert(1)&lt;/script&gt;.md</a>"),
            "{html}"
        );
        assert!(
            html.contains("title=\"git+file:///r/repo#x/&quot;&lt;script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<code>git+file:///r/repo#x/&quot;&lt;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        // Nothing to disclose when the short form is the locator.
        let html = locator("s3://b/k", None).into_string();
        assert!(!html.contains("<details"), "{html}");
    }

    #[test]
    fn readable_times() {
        let now = ts("2026-12-07T12:00:00Z");
        let html = when(ts("2026-12-04T11:00:00Z"), now).into_string();
        assert!(html.contains("2026-12-04 (3 days ago)"), "{html}");
        assert!(
            html.contains("datetime=\"2026-12-04T11:00:00.000Z\"")
                && html.contains("title=\"2026-12-04T11:00:00.000Z\""),
            "{html}"
        );
        assert!(
            when(ts("2027-01-06T12:00:00Z"), now)
                .into_string()
                .contains("in 30 days")
        );
        assert_eq!(relative(ts("2026-12-07T11:59:30Z"), now), "just now");
        assert_eq!(relative(ts("2026-12-07T11:55:00Z"), now), "5 minutes ago");
        assert_eq!(relative(ts("2026-12-07T11:00:00Z"), now), "1 hour ago");
        assert_eq!(relative(ts("2026-12-06T11:00:00Z"), now), "1 day ago");
        assert_eq!(relative(ts("2026-12-07T14:00:00Z"), now), "in 2 hours");
    }

    #[test]
    fn fresh_until_says_the_date_and_the_days_left() {
        let now = ts("2026-12-07T12:00:00Z");
        let html = fresh_until(ts("2027-01-06T12:00:00Z"), now).into_string();
        assert!(
            html.starts_with("fresh <span class=\"until\">until "),
            "{html}"
        );
        assert!(
            html.contains(">2027-01-06</time> <span class=\"left\">(30 days left)</span>"),
            "{html}"
        );
        assert!(
            html.contains("datetime=\"2027-01-06T12:00:00.000Z\""),
            "{html}"
        );
        assert!(
            fresh_until(ts("2026-12-08T13:00:00Z"), now)
                .into_string()
                .contains("(1 day left)")
        );
        assert!(
            fresh_until(ts("2026-12-07T20:00:00Z"), now)
                .into_string()
                .contains("(less than a day left)")
        );
        assert_eq!(days_left(ts("2026-12-01T00:00:00Z"), now), 0);
    }
}
