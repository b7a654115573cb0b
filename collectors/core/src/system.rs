//! How a source assigns an artifact to an AI system.
//!
//! A source names its system either with a fixed `system` or with `system_from_path`, a
//! `/`-separated pattern in which exactly one segment contains `{system}`; other segments may be
//! literals, globs with `*` and `?` (within one segment) or `**` (any number of segments; at
//! least one when it ends the pattern).
//! `systems/{system}/**` assigns `systems/fraud/model/card.md` to `fraud`. A path that does not
//! match has no system and the engine skips it for that source.
//!
//! Captured names must be valid identifiers (`aims_model::record::validate_ident`); a segment
//! that is not (spaces, non-ASCII) does not match. Rules that come from neither (MLflow, where the
//! registered model name is the system) defer to what the listing says.

use aims_model::record::validate_ident;

/// The placeholder in `system_from_path`.
pub const SYSTEM_PLACEHOLDER: &str = "{system}";

/// A compiled system rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemRule {
    /// Every artifact belongs to this system.
    Fixed(String),
    /// The system is captured from the artifact path.
    FromPath(PathPattern),
    /// The listing names the system ([`crate::ArtifactRef::system`]).
    FromListing,
}

impl SystemRule {
    /// The system for an artifact at `path` whose listing said `listed`.
    pub fn resolve(&self, path: &str, listed: Option<&str>) -> Option<String> {
        match self {
            Self::Fixed(s) => Some(s.clone()),
            Self::FromPath(p) => p.capture(path),
            Self::FromListing => listed
                .filter(|s| validate_ident("system", s).is_ok())
                .map(str::to_owned),
        }
    }
}

/// A parsed `system_from_path` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    raw: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more whole segments.
    AnyDepth,
    /// A glob within one segment.
    Glob(String),
    /// A segment holding `{system}` between a glob prefix and a glob suffix.
    Capture { prefix: String, suffix: String },
}

/// Why a `system_from_path` pattern is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    /// No `{system}` placeholder.
    #[error("pattern must contain {SYSTEM_PLACEHOLDER}")]
    MissingPlaceholder,
    /// More than one placeholder.
    #[error("pattern must contain {SYSTEM_PLACEHOLDER} exactly once")]
    RepeatedPlaceholder,
    /// `**` combined with other text in a segment.
    #[error("`**` must be a whole path segment")]
    BadDoubleStar,
}

impl PathPattern {
    /// Parses a pattern such as `systems/{system}/**`.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        match raw.matches(SYSTEM_PLACEHOLDER).count() {
            0 => return Err(PatternError::MissingPlaceholder),
            1 => {}
            _ => return Err(PatternError::RepeatedPlaceholder),
        }
        let mut segments = Vec::new();
        for seg in raw.trim_start_matches('/').split('/') {
            if seg == "**" {
                segments.push(Segment::AnyDepth);
            } else if seg.contains("**") {
                return Err(PatternError::BadDoubleStar);
            } else if let Some((prefix, suffix)) = seg.split_once(SYSTEM_PLACEHOLDER) {
                segments.push(Segment::Capture {
                    prefix: prefix.to_owned(),
                    suffix: suffix.to_owned(),
                });
            } else {
                segments.push(Segment::Glob(seg.to_owned()));
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The captured system name, when `path` matches.
    pub fn capture(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match_segments(&self.segments, &parts)
    }
}

/// Matches pattern segments against path segments; returns the capture on success.
fn match_segments(pat: &[Segment], path: &[&str]) -> Option<String> {
    let Some((first, rest)) = pat.split_first() else {
        // Pattern exhausted: success only if the path is too; the capture is set by the caller.
        return path.is_empty().then(String::new);
    };
    match first {
        // A trailing `**` needs at least one segment (as in gitignore: `a/**` is inside `a`).
        Segment::AnyDepth => {
            let min = usize::from(rest.is_empty());
            (min..=path.len()).find_map(|skip| match_segments(rest, &path[skip..]))
        }
        Segment::Glob(g) => {
            let (head, tail) = path.split_first()?;
            if glob_segment(g, head) {
                match_segments(rest, tail)
            } else {
                None
            }
        }
        Segment::Capture { prefix, suffix } => {
            let (head, tail) = path.split_first()?;
            let name = capture_segment(prefix, suffix, head)?;
            match_segments(rest, tail)?;
            Some(name)
        }
    }
}

/// Splits `seg` into `prefix-match + name + suffix-match` with a non-empty, valid name.
fn capture_segment(prefix: &str, suffix: &str, seg: &str) -> Option<String> {
    // Try the shortest prefix first so `{system}` captures as much as it can.
    let bounds: Vec<usize> = seg
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(seg.len()))
        .collect();
    for &a in &bounds {
        if !glob_segment(prefix, &seg[..a]) {
            continue;
        }
        for &b in bounds.iter().rev() {
            if b <= a {
                break;
            }
            if glob_segment(suffix, &seg[b..]) {
                let name = &seg[a..b];
                if validate_ident("system", name).is_ok() {
                    return Some(name.to_owned());
                }
            }
        }
    }
    None
}

/// `*` and `?` matching within one path segment.
fn glob_segment(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic iterative wildcard match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: &str) -> SystemRule {
        SystemRule::FromPath(PathPattern::parse(p).unwrap())
    }

    #[test]
    fn captures_the_segment() {
        let r = rule("systems/{system}/**");
        assert_eq!(
            r.resolve("systems/fraud/model/card.md", None).as_deref(),
            Some("fraud")
        );
        assert_eq!(r.resolve("systems/fraud", None), None);
        assert_eq!(r.resolve("docs/readme.md", None), None);
        assert_eq!(r.resolve("systems/has space/x", None), None);
    }

    #[test]
    fn prefix_suffix_and_globs() {
        let r = rule("**/ai-{system}.d/*.json");
        assert_eq!(
            r.resolve("a/b/ai-credit.d/x.json", None).as_deref(),
            Some("credit")
        );
        assert_eq!(
            r.resolve("ai-credit.d/x.json", None).as_deref(),
            Some("credit")
        );
        assert_eq!(r.resolve("ai-credit.d/x.yaml", None), None);
        let r = rule("{system}/reports/*");
        assert_eq!(
            r.resolve("fraud/reports/a.json", None).as_deref(),
            Some("fraud")
        );
        assert_eq!(r.resolve("fraud/reports/a/b.json", None), None);
    }

    #[test]
    fn fixed_and_listing() {
        assert_eq!(
            SystemRule::Fixed("x".into())
                .resolve("any", None)
                .as_deref(),
            Some("x")
        );
        assert_eq!(
            SystemRule::FromListing
                .resolve("any", Some("m1"))
                .as_deref(),
            Some("m1")
        );
        assert_eq!(SystemRule::FromListing.resolve("any", None), None);
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(
            PathPattern::parse("systems/**"),
            Err(PatternError::MissingPlaceholder)
        );
        assert_eq!(
            PathPattern::parse("{system}/{system}"),
            Err(PatternError::RepeatedPlaceholder)
        );
        assert_eq!(
            PathPattern::parse("a**/{system}"),
            Err(PatternError::BadDoubleStar)
        );
    }

    #[test]
    fn glob_segment_works() {
        assert!(glob_segment("*.md", "card.md"));
        assert!(glob_segment("a?c", "abc"));
        assert!(!glob_segment("a?c", "ac"));
        assert!(glob_segment("*", ""));
        assert!(glob_segment("", ""));
        assert!(!glob_segment("", "x"));
    }
}
