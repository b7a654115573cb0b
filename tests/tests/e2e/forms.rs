//! Issue 14: the dashboard's write forms, driven the way a browser drives them (form posts with
//! the session cookie, `Origin` and `Sec-Fetch-Site` as Chromium sends them on its own site)
//! against the release server: an admin records a statement of applicability, uploads evidence
//! and accepts a finding's risk, each a ledger record shown on the page after the redirect;
//! cross-site posts, posts without the session's form token and posts from a viewer's session
//! are refused with 403 and write nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use aims_e2e::{ServerProcess, browse, get_json, get_text, http, run_seed_pipeline};

const SYSTEM: &str = "credit-risk";
const BOUNDARY: &str = "----aims-e2e-form-boundary";

/// A session as a browser holds it: signs in with `/?token=` and returns the cookie to send.
async fn session_cookie(server: &ServerProcess, token: &str) -> String {
    let r = no_redirects()
        .get(format!("{}/?token={token}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    set_cookie(&r, "aims_session=").expect("a session cookie")
}

fn no_redirects() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of the response's `Set-Cookie` starting with `prefix`.
fn set_cookie(r: &reqwest::Response, prefix: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(prefix))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// The system page as the holder of `cookie` sees it.
async fn system_page(server: &ServerProcess, cookie: &str) -> String {
    let r = no_redirects()
        .get(format!("{}/systems/{SYSTEM}", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of the first hidden `csrf` field of a page.
fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no form token in the page"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn tree_size(server: &ServerProcess, token: &str) -> u64 {
    let note = get_text(&format!("{}/v1/log/checkpoint", server.url), token)
        .await
        .unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// How a post looks to the server: from this site (as the browser sends it from our page) or
/// from another.
#[derive(Clone, Copy)]
enum From {
    ThisSite,
    OtherSite,
}

fn browser_headers(
    rb: reqwest::RequestBuilder,
    server: &ServerProcess,
    from: From,
) -> reqwest::RequestBuilder {
    match from {
        From::ThisSite => rb
            .header("origin", &server.url)
            .header("sec-fetch-site", "same-origin"),
        From::OtherSite => rb
            .header("origin", "http://attacker.example")
            .header("sec-fetch-site", "cross-site"),
    }
}

/// A URL-encoded form post to `path` with `cookie`: the status and the response.
async fn post_form(
    server: &ServerProcess,
    path: &str,
    cookie: &str,
    from: From,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    browser_headers(
        no_redirects().post(format!("{}{path}", server.url)),
        server,
        from,
    )
    .header("cookie", cookie)
    .header("content-type", "application/x-www-form-urlencoded")
    .body(body)
    .send()
    .await
    .unwrap()
}

/// A `multipart/form-data` body as a browser builds it from the upload form: the text fields in
/// order, then the file.
fn multipart(fields: &[(&str, &str)], file_name: &str, file: &str) -> String {
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/x-yaml\r\n\r\n{file}\r\n--{BOUNDARY}--\r\n"
    ));
    body
}

/// After a form post: a 303 back to the system page with the outcome cookie; the page then
/// shows the outcome (and the next load no longer does).
async fn outcome(server: &ServerProcess, cookie: &str, r: reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], format!("/systems/{SYSTEM}"));
    let flash = set_cookie(&r, "aims_flash=").expect("the outcome cookie");
    let page = system_page(server, &format!("{cookie}; {flash}")).await;
    let at = page
        .find("id=\"form-result\"")
        .unwrap_or_else(|| panic!("no outcome on the page"));
    let tag = &page[..at];
    let class_start = tag.rfind('<').unwrap();
    let text_start = at + page[at..].find('>').unwrap() + 1;
    let text = page[text_start..text_start + page[text_start..].find("</p>").unwrap()].to_owned();
    (page[class_start..at + 40].to_owned(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_14_admin_forms_write_the_ledger_and_refuse_forgeries() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let viewer = run_seed_pipeline(&server, tmp.path()).unwrap();
    let admin = server.token("admin", "compliance-admin").unwrap();
    let base = server.url.clone();
    let admin_cookie = session_cookie(&server, &admin).await;
    let viewer_cookie = session_cookie(&server, &viewer).await;

    // Chromium renders the admin's forms (signed in with a sign-in link, as a person would).
    let url = format!("{base}/?token={admin}&next=/systems/{SYSTEM}");
    let shot = std::env::var("AIMS_SCREENSHOT_DIR")
        .ok()
        .map(|d| std::path::Path::new(&d).join("system-forms.png"));
    let dom = tokio::task::spawn_blocking(move || browse(&url, shot.as_deref()).unwrap())
        .await
        .unwrap();
    for form in [
        "id=\"applicability-form\"",
        "id=\"upload-form\"",
        "enctype=\"multipart/form-data\"",
        "class=\"accept-form\"",
    ] {
        assert!(dom.contains(form), "Chromium's DOM lacks {form}");
    }

    // The admin sees the three forms; the viewer sees none, and no token.
    let page = system_page(&server, &admin_cookie).await;
    for form in [
        "id=\"applicability-form\"",
        "id=\"upload-form\"",
        "Accept risk",
    ] {
        assert!(page.contains(form), "the admin's page lacks {form}");
    }
    let token = form_token(&page);
    let viewer_page = system_page(&server, &viewer_cookie).await;
    assert!(!viewer_page.contains("applicability-form"));
    assert!(!viewer_page.contains("upload-form"));
    assert!(!viewer_page.contains("name=\"csrf\""));
    assert!(!viewer_page.contains("Accept risk"));
    // The system-level maturity is on the page and on the grid, in words.
    assert!(
        viewer_page.contains("id=\"maturity-summary\"")
            && viewer_page.contains("applicable controls: median"),
        "no maturity summary"
    );
    let r = no_redirects()
        .get(format!("{base}/"))
        .header("cookie", &viewer_cookie)
        .send()
        .await
        .unwrap();
    let grid = r.text().await.unwrap();
    assert!(grid.contains("class=\"maturity\""), "no maturity column");
    assert!(
        grid.contains("median <strong>"),
        "the grid's maturity is text"
    );

    // A control the pipeline left drifted or missing.
    let controls = get_json(&format!("{base}/v1/systems/{SYSTEM}/controls"), &viewer)
        .await
        .unwrap();
    let target = controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "drifted" || c["status"] == "missing")
        .unwrap()["control"]
        .as_str()
        .unwrap()
        .to_owned();
    let soa = format!("/systems/{SYSTEM}/applicability");
    let why = "Retired from production; the archive plan covers this control.";
    let size = tree_size(&server, &viewer).await;

    // Forgeries write nothing: another site's post (with or without the token), a post
    // without the token, a viewer's session (with the admin's token), a bearer token.
    let decision = [
        ("control", target.as_str()),
        ("applicable", "no"),
        ("justification", why),
    ];
    let with_token = |t: &str| -> Vec<(&'static str, String)> {
        let mut f = vec![("csrf", t.to_owned())];
        f.extend(decision.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    let without_token: Vec<(&'static str, String)> = decision
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    let refused = [
        (From::OtherSite, &admin_cookie, without_token.clone()),
        (From::OtherSite, &admin_cookie, with_token(&token)),
        (From::ThisSite, &admin_cookie, without_token),
        (
            From::ThisSite,
            &admin_cookie,
            with_token("forged-token-forged-token-forged-token-123"),
        ),
        (From::ThisSite, &viewer_cookie, with_token(&token)),
    ];
    for (i, (from, cookie, fields)) in refused.iter().enumerate() {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_form(&server, &soa, cookie, *from, &pairs).await;
        assert_eq!(r.status(), 403, "forgery #{i}");
        let body = r.text().await.unwrap();
        assert!(body.contains("Not saved"), "forgery #{i}: {body}");
    }
    let r = http()
        .unwrap()
        .post(format!("{base}{soa}"))
        .bearer_auth(&admin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={token}&control={target}&applicable=no&justification=x"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "forms take a session, not a bearer token");
    assert_eq!(tree_size(&server, &viewer).await, size, "nothing written");

    // (a) Statement of applicability: saved, one ledger record, the control excluded.
    let fields = with_token(&token);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post_form(&server, &soa, &admin_cookie, From::ThisSite, &pairs).await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(class.contains("notice ok"), "{class}");
    assert!(
        text.contains(&format!("Saved: {target} is not applicable")),
        "{text}"
    );
    assert_eq!(tree_size(&server, &viewer).await, size + 1);
    let page = system_page(&server, &admin_cookie).await;
    assert!(
        !page.contains("id=\"form-result\""),
        "the outcome is shown once"
    );
    let row = &page[page.find(&format!("data-control=\"{target}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("excluded") && row.contains("archive plan"),
        "{row}"
    );
    // An error a person can read: no justification.
    let r = post_form(
        &server,
        &soa,
        &admin_cookie,
        From::ThisSite,
        &[
            ("csrf", &token),
            ("control", "A.2.2"),
            ("applicable", "no"),
            ("justification", ""),
        ],
    )
    .await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(class.contains("notice error"), "{class}");
    assert!(
        text.starts_with("Not saved:") && text.contains("justification"),
        "{text}"
    );
    assert_eq!(tree_size(&server, &viewer).await, size + 1);

    // (b) Upload: the AI policy makes A.2.2 fresh; the bytes come back from the blob store.
    let policy = "kind: ai_policy\ntitle: Responsible AI policy\nowner: compliance\n";
    let body = multipart(
        &[
            ("csrf", &token),
            ("kind", "ai_policy"),
            ("name", ""),
            ("artifact_time", ""),
            ("expires_at", ""),
        ],
        "ai-policy.yaml",
        policy,
    );
    let upload = |body: String, cookie: String| {
        let server = &server;
        async move {
            browser_headers(
                no_redirects().post(format!("{}/systems/{SYSTEM}/uploads", server.url)),
                server,
                From::ThisSite,
            )
            .header("cookie", cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap()
        }
    };
    // Without the token (another site's form cannot know it): refused before any byte is kept.
    let forged = multipart(&[("kind", "ai_policy")], "ai-policy.yaml", policy);
    let r = upload(forged, admin_cookie.clone()).await;
    assert_eq!(r.status(), 403);
    let r = upload(body.clone(), viewer_cookie.clone()).await;
    assert_eq!(r.status(), 403, "a viewer's session cannot upload");
    assert_eq!(tree_size(&server, &viewer).await, size + 1);
    let r = upload(body, admin_cookie.clone()).await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(class.contains("notice ok"), "{class}: {text}");
    assert!(text.contains("Saved: ai-policy.yaml"), "{text}");
    assert_eq!(tree_size(&server, &viewer).await, size + 2);
    let controls = get_json(&format!("{base}/v1/systems/{SYSTEM}/controls"), &viewer)
        .await
        .unwrap();
    let a22 = controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.2.2")
        .unwrap();
    assert_eq!(a22["status"], "fresh", "{a22}");
    let sha = a22["evidence"][0]["sha256"].as_str().unwrap();
    let blob = get_text(&format!("{base}/v1/blobs/{sha}"), &viewer)
        .await
        .unwrap();
    assert_eq!(blob, policy);
    // An empty upload is refused with a readable message, nothing written.
    let r = upload(
        multipart(&[("csrf", &token), ("kind", "ai_policy")], "empty.yaml", ""),
        admin_cookie.clone(),
    )
    .await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(
        class.contains("notice error") && text.contains("empty"),
        "{text}"
    );
    assert_eq!(tree_size(&server, &viewer).await, size + 2);

    // (c) Accept risk on an open finding: saved until the chosen date, shown on the finding.
    let findings = get_json(&format!("{base}/v1/findings?system={SYSTEM}"), &viewer)
        .await
        .unwrap();
    let finding = findings
        .as_array()
        .or_else(|| findings["findings"].as_array())
        .unwrap()
        .iter()
        .find(|f| f["acknowledged"].is_null())
        .unwrap_or_else(|| panic!("no open finding in {findings}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = format!("/systems/{SYSTEM}/acknowledge");
    let until = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    // An expiry in the past is refused, readably.
    let r = post_form(
        &server,
        &ack,
        &admin_cookie,
        From::ThisSite,
        &[
            ("csrf", &token),
            ("finding", &finding),
            ("reason", "x"),
            ("expires", "2020-01-01"),
        ],
    )
    .await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(
        class.contains("notice error") && text.contains("expires_at"),
        "{text}"
    );
    // A finding that is not open on this system: refused, readably.
    let r = post_form(
        &server,
        &ack,
        &admin_cookie,
        From::ThisSite,
        &[
            ("csrf", &token),
            ("finding", "no-such-finding"),
            ("reason", "x"),
            ("expires", &until),
        ],
    )
    .await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(
        class.contains("notice error") && text.contains("no open finding"),
        "{text}"
    );
    // From a viewer's session: refused.
    let fields = [
        ("csrf", token.as_str()),
        ("finding", finding.as_str()),
        ("reason", "Compensating manual review each release."),
        ("expires", until.as_str()),
    ];
    let r = post_form(&server, &ack, &viewer_cookie, From::ThisSite, &fields).await;
    assert_eq!(r.status(), 403);
    assert_eq!(tree_size(&server, &viewer).await, size + 2);
    let r = post_form(&server, &ack, &admin_cookie, From::ThisSite, &fields).await;
    let (class, text) = outcome(&server, &admin_cookie, r).await;
    assert!(class.contains("notice ok"), "{class}: {text}");
    assert!(text.contains(&format!("accepted until {until}")), "{text}");
    assert_eq!(tree_size(&server, &viewer).await, size + 3);
    let page = system_page(&server, &viewer_cookie).await;
    assert!(
        page.contains("Risk accepted by <strong>compliance-admin</strong>")
            && page.contains("Compensating manual review each release."),
        "the acceptance is shown on the finding"
    );
}
