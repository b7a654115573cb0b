//! Locators and paths of MLflow artifacts.
//!
//! Locators are `mlflow://<host>[:port][/<prefix>]/` followed by
//! - `models/<name>/versions/<v>`: a model version;
//! - `models/<name>/aliases/<alias>`: an alias (`stage:<Stage>` for a legacy stage);
//! - `runs/<run_id>/validation`: the validation derived from a run's metrics;
//! - `runs/<run_id>/artifacts/<path>`: a file logged under a run.
//!
//! Names and path segments are percent-encoded except for `A–Z a–z 0–9 - . _ ~ : @`, so a
//! locator is a valid URI whatever a model is called, and `/` inside a name cannot be confused
//! with a separator. Credentials in the tracking URI never reach a locator.
//!
//! Paths (what `system_from_path` and catalog globs see) all live under `models/<name>/`:
//! `models/<name>/versions/<v>`, `models/<name>/aliases/<alias>`,
//! `models/<name>/runs/<run_id>/validation.json` and `models/<name>/runs/<run_id>/artifacts/<path>`
//! (the artifact path as logged, so `**/README.md` matches a model card).

use reqwest::Url;

/// What a locator points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A model version.
    Version {
        /// Registered model name.
        model: String,
        /// Version number.
        version: String,
    },
    /// An alias or `stage:<Stage>`.
    Alias {
        /// Registered model name.
        model: String,
        /// Alias name.
        alias: String,
    },
    /// The validation derived from a run.
    Validation {
        /// Run id.
        run_id: String,
    },
    /// A file logged under a run.
    RunArtifact {
        /// Run id.
        run_id: String,
        /// Path relative to the run's artifact root.
        path: String,
    },
}

/// The prefix of a legacy stage pseudo-alias.
pub const STAGE_PREFIX: &str = "stage:";

/// `mlflow://<host>[:port][/<prefix>]/` for a tracking URI (credentials dropped).
pub fn locator_base(url: &Url) -> String {
    let mut s = String::from("mlflow://");
    s.push_str(url.host_str().unwrap_or("localhost"));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    let prefix = url.path().trim_matches('/');
    if !prefix.is_empty() {
        s.push('/');
        s.push_str(prefix);
    }
    s.push('/');
    s
}

/// The locator of `target` under `base` (from [`locator_base`]).
pub fn locator(base: &str, target: &Target) -> String {
    match target {
        Target::Version { model, version } => {
            format!("{base}models/{}/versions/{}", enc(model), enc(version))
        }
        Target::Alias { model, alias } => {
            format!("{base}models/{}/aliases/{}", enc(model), enc(alias))
        }
        Target::Validation { run_id } => format!("{base}runs/{}/validation", enc(run_id)),
        Target::RunArtifact { run_id, path } => {
            format!("{base}runs/{}/artifacts/{}", enc(run_id), enc_path(path))
        }
    }
}

/// The source-relative path of `target`, for a run target attributed to `model`.
pub fn path(model: &str, target: &Target) -> String {
    match target {
        Target::Version { model, version } => {
            format!("models/{}/versions/{}", enc(model), enc(version))
        }
        Target::Alias { model, alias } => format!("models/{}/aliases/{}", enc(model), enc(alias)),
        Target::Validation { run_id } => {
            format!("models/{}/runs/{}/validation.json", enc(model), enc(run_id))
        }
        Target::RunArtifact { run_id, path } => {
            format!(
                "models/{}/runs/{}/artifacts/{path}",
                enc(model),
                enc(run_id)
            )
        }
    }
}

/// Parses a locator produced by [`locator`] under `base`.
pub fn parse(base: &str, locator: &str) -> Option<Target> {
    let rest = locator.strip_prefix(base)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["models", m, "versions", v] => Some(Target::Version {
            model: dec(m)?,
            version: dec(v)?,
        }),
        ["models", m, "aliases", a] => Some(Target::Alias {
            model: dec(m)?,
            alias: dec(a)?,
        }),
        ["runs", r, "validation"] => Some(Target::Validation { run_id: dec(r)? }),
        ["runs", r, "artifacts", path @ ..] if !path.is_empty() => {
            let segs: Option<Vec<String>> = path.iter().map(|s| dec(s)).collect();
            Some(Target::RunArtifact {
                run_id: dec(r)?,
                path: segs?.join("/"),
            })
        }
        _ => None,
    }
}

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:@".contains(&b)
}

/// Percent-encodes one segment.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes each `/`-separated segment of a path.
fn enc_path(p: &str) -> String {
    p.split('/').map(enc).collect::<Vec<_>>().join("/")
}

/// Decodes one segment; `None` when it is not valid percent-encoded UTF-8.
pub fn dec(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_drops_credentials_and_keeps_prefix() {
        let u = Url::parse("https://user:pw@mlflow.example.com:8443/tracking/").unwrap();
        assert_eq!(
            locator_base(&u),
            "mlflow://mlflow.example.com:8443/tracking/"
        );
        let u = Url::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(locator_base(&u), "mlflow://127.0.0.1:5000/");
    }

    #[test]
    fn round_trips() {
        let base = "mlflow://h:1/";
        let targets = [
            Target::Version {
                model: "credit risk/v2".into(),
                version: "3".into(),
            },
            Target::Alias {
                model: "m".into(),
                alias: "stage:Production".into(),
            },
            Target::Validation {
                run_id: "abc".into(),
            },
            Target::RunArtifact {
                run_id: "abc".into(),
                path: "model/My Card.md".into(),
            },
        ];
        for t in targets {
            let l = locator(base, &t);
            assert_eq!(parse(base, &l), Some(t.clone()), "{l}");
        }
        assert_eq!(
            locator(
                base,
                &Target::Version {
                    model: "credit risk/v2".into(),
                    version: "3".into()
                }
            ),
            "mlflow://h:1/models/credit%20risk%2Fv2/versions/3"
        );
        assert_eq!(parse(base, "mlflow://other/models/m/versions/1"), None);
        assert_eq!(parse(base, "mlflow://h:1/runs/abc/artifacts"), None);
        assert_eq!(parse(base, "mlflow://h:1/models/%zz/versions/1"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(
            path(
                "fraud",
                &Target::RunArtifact {
                    run_id: "r1".into(),
                    path: "model/README.md".into()
                }
            ),
            "models/fraud/runs/r1/artifacts/model/README.md"
        );
        assert_eq!(
            path(
                "fraud",
                &Target::Validation {
                    run_id: "r1".into()
                }
            ),
            "models/fraud/runs/r1/validation.json"
        );
    }
}
