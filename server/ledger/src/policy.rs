//! The auditor's pinned trust file, in c2sp.org/tlog-policy syntax.
//!
//! Lines (items separated by ASCII spaces or tabs; blank lines and lines starting with `#` after
//! optional whitespace are ignored):
//!
//! - `log <vkey> [<url>]`: a log key (type 0x01); its key name is the log's origin.
//! - `witness <name> <vkey> [<url>]`: a cosigner key (type 0x04). aims-evidence names its clock
//!   cosigner `clock`; external witnesses may be added the same way.
//! - `group <name> <k|any|all> <member>...`: at least k of the members (witnesses or earlier
//!   groups, each listed once) must have cosigned.
//! - `quorum <name|none>`: the witness or group that must be satisfied.
//!
//! Invariants checked when parsing: names are defined before use, witness and group names share
//! one namespace and `none` is reserved, no two logs and no two witnesses wrap the same public
//! key, `1 <= k <= n`, at most one quorum line. A missing quorum line is read as `quorum none`
//! (the spec requires the line; [`TrustPolicy::to_text`] always writes it). Only tab, newline and
//! printable characters are allowed; a CR is refused. Keys are parsed with their key IDs
//! checked.

use crate::note::{CosignatureVerifier, NoteError, Verifier};

/// Why a trust file is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A syntax or consistency error on a line (1-based).
    #[error("policy line {line}: {reason}")]
    Line {
        /// Line number, 1-based.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A key on a line is not acceptable.
    #[error("policy line {line}: {source}")]
    Key {
        /// Line number, 1-based.
        line: usize,
        /// The key error.
        #[source]
        source: NoteError,
    },
}

/// A trusted log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLog {
    /// The log key; its name is the origin.
    pub verifier: Verifier,
    /// Optional URL.
    pub url: Option<String>,
}

/// A trusted cosigner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyWitness {
    /// Policy-local name (e.g. `clock`).
    pub name: String,
    /// The cosigner key.
    pub verifier: CosignatureVerifier,
    /// Optional URL.
    pub url: Option<String>,
}

/// How many members of a group must have cosigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// All members.
    All,
    /// At least one member.
    Any,
    /// At least k members, `1 <= k <= n`.
    AtLeast(usize),
}

/// A witness group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyGroup {
    /// Group name.
    pub name: String,
    /// Required number of members.
    pub threshold: Threshold,
    /// Member names (witnesses or earlier groups).
    pub members: Vec<String>,
}

/// The quorum rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// No cosignature required.
    None,
    /// The named witness or group must be satisfied.
    Named(String),
}

/// A parsed trust policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Trusted logs.
    pub logs: Vec<PolicyLog>,
    /// Trusted cosigners.
    pub witnesses: Vec<PolicyWitness>,
    /// Witness groups, in definition order.
    pub groups: Vec<PolicyGroup>,
    /// The quorum rule.
    pub quorum: Quorum,
}

fn line_err(line: usize, reason: impl Into<String>) -> PolicyError {
    PolicyError::Line {
        line,
        reason: reason.into(),
    }
}

impl TrustPolicy {
    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut p = TrustPolicy {
            logs: Vec::new(),
            witnesses: Vec::new(),
            groups: Vec::new(),
            quorum: Quorum::None,
        };
        let mut saw_quorum = false;
        for (i, raw) in text.split('\n').enumerate() {
            let n = i + 1;
            if raw.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(line_err(n, "control character"));
            }
            let items: Vec<&str> = raw.split([' ', '\t']).filter(|s| !s.is_empty()).collect();
            let Some((&keyword, args)) = items.split_first() else {
                continue;
            };
            if keyword.starts_with('#') {
                continue;
            }
            match keyword {
                "log" => {
                    let (vkey, url) = match args {
                        [v] => (*v, None),
                        [v, u] => (*v, Some((*u).to_owned())),
                        _ => return Err(line_err(n, "expected `log <vkey> [<url>]`")),
                    };
                    let verifier = Verifier::from_vkey(vkey)
                        .map_err(|source| PolicyError::Key { line: n, source })?;
                    if p.logs
                        .iter()
                        .any(|l| l.verifier.public_key() == verifier.public_key())
                    {
                        return Err(line_err(n, "duplicate log key"));
                    }
                    p.logs.push(PolicyLog { verifier, url });
                }
                "witness" => {
                    let (name, vkey, url) = match args {
                        [name, v] => (*name, *v, None),
                        [name, v, u] => (*name, *v, Some((*u).to_owned())),
                        _ => return Err(line_err(n, "expected `witness <name> <vkey> [<url>]`")),
                    };
                    p.check_new_name(n, name)?;
                    let verifier = CosignatureVerifier::from_vkey(vkey)
                        .map_err(|source| PolicyError::Key { line: n, source })?;
                    if p.witnesses
                        .iter()
                        .any(|w| w.verifier.public_key() == verifier.public_key())
                    {
                        return Err(line_err(n, "duplicate witness key"));
                    }
                    p.witnesses.push(PolicyWitness {
                        name: name.to_owned(),
                        verifier,
                        url,
                    });
                }
                "group" => {
                    let [name, k, members @ ..] = args else {
                        return Err(line_err(
                            n,
                            "expected `group <name> <k|any|all> <member>...`",
                        ));
                    };
                    p.check_new_name(n, name)?;
                    if members.is_empty() {
                        return Err(line_err(n, "a group needs at least one member"));
                    }
                    let mut seen: Vec<&str> = Vec::new();
                    for m in members {
                        if !p.is_defined(m) {
                            return Err(line_err(n, format!("undefined member {m:?}")));
                        }
                        if seen.contains(m) {
                            return Err(line_err(n, format!("member {m:?} listed twice")));
                        }
                        seen.push(m);
                    }
                    let threshold = match *k {
                        "all" => Threshold::All,
                        "any" => Threshold::Any,
                        k => {
                            let v = crate::checkpoint::parse_decimal(k)
                                .and_then(|v| usize::try_from(v).ok())
                                .filter(|v| (1..=members.len()).contains(v))
                                .ok_or_else(|| {
                                    line_err(n, "threshold must be 1..=n, any or all")
                                })?;
                            Threshold::AtLeast(v)
                        }
                    };
                    p.groups.push(PolicyGroup {
                        name: (*name).to_owned(),
                        threshold,
                        members: members.iter().map(|m| (*m).to_owned()).collect(),
                    });
                }
                "quorum" => {
                    let [name] = args else {
                        return Err(line_err(n, "expected `quorum <name>`"));
                    };
                    if saw_quorum {
                        return Err(line_err(n, "more than one quorum line"));
                    }
                    saw_quorum = true;
                    p.quorum = if *name == "none" {
                        Quorum::None
                    } else if p.is_defined(name) {
                        Quorum::Named((*name).to_owned())
                    } else {
                        return Err(line_err(n, format!("undefined quorum {name:?}")));
                    };
                }
                other => return Err(line_err(n, format!("unknown keyword {other:?}"))),
            }
        }
        Ok(p)
    }

    fn is_defined(&self, name: &str) -> bool {
        self.witnesses.iter().any(|w| w.name == name) || self.groups.iter().any(|g| g.name == name)
    }

    fn check_new_name(&self, line: usize, name: &str) -> Result<(), PolicyError> {
        if name == "none" || name.starts_with('#') {
            return Err(line_err(line, format!("reserved name {name:?}")));
        }
        if self.is_defined(name) {
            return Err(line_err(line, format!("name {name:?} defined twice")));
        }
        Ok(())
    }

    /// The policy as a file: logs, witnesses, groups, then the quorum line (always written).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.logs {
            out.push_str("log ");
            out.push_str(&l.verifier.vkey());
            if let Some(u) = &l.url {
                out.push(' ');
                out.push_str(u);
            }
            out.push('\n');
        }
        for w in &self.witnesses {
            out.push_str(&format!("witness {} {}", w.name, w.verifier.vkey()));
            if let Some(u) = &w.url {
                out.push(' ');
                out.push_str(u);
            }
            out.push('\n');
        }
        for g in &self.groups {
            let k = match g.threshold {
                Threshold::All => "all".to_owned(),
                Threshold::Any => "any".to_owned(),
                Threshold::AtLeast(k) => k.to_string(),
            };
            out.push_str(&format!("group {} {} {}\n", g.name, k, g.members.join(" ")));
        }
        match &self.quorum {
            Quorum::None => out.push_str("quorum none\n"),
            Quorum::Named(q) => out.push_str(&format!("quorum {q}\n")),
        }
        out
    }

    /// The log whose key name (origin) is `origin`.
    pub fn log(&self, origin: &str) -> Option<&Verifier> {
        self.logs
            .iter()
            .map(|l| &l.verifier)
            .find(|v| v.name() == origin)
    }

    /// The cosigner with policy name `name` (e.g. `clock`).
    pub fn witness(&self, name: &str) -> Option<&CosignatureVerifier> {
        self.witnesses
            .iter()
            .find(|w| w.name == name)
            .map(|w| &w.verifier)
    }

    /// Whether the quorum holds when the witnesses with policy names `cosigned` have validly
    /// cosigned.
    pub fn quorum_satisfied(&self, cosigned: &[&str]) -> bool {
        match &self.quorum {
            Quorum::None => true,
            Quorum::Named(q) => self.satisfied(q, cosigned, 0),
        }
    }

    fn satisfied(&self, name: &str, cosigned: &[&str], depth: usize) -> bool {
        // Groups only reference earlier names, so depth is bounded by the number of groups.
        if depth > self.groups.len() {
            return false;
        }
        if self.witnesses.iter().any(|w| w.name == name) {
            return cosigned.contains(&name);
        }
        let Some(g) = self.groups.iter().find(|g| g.name == name) else {
            return false;
        };
        let count = g
            .members
            .iter()
            .filter(|m| self.satisfied(m, cosigned, depth + 1))
            .count();
        let need = match g.threshold {
            Threshold::All => g.members.len(),
            Threshold::Any => 1,
            Threshold::AtLeast(k) => k,
        };
        count >= need
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{CosignatureSigner, Signer};

    fn keys() -> (String, String, String, String) {
        let log = Signer::from_secret_bytes("aims.example.org/ledger", [1u8; 32]).unwrap();
        let clock =
            CosignatureSigner::from_secret_bytes("aims.example.org/clock", [2u8; 32]).unwrap();
        let w1 = CosignatureSigner::from_secret_bytes("w1.example", [3u8; 32]).unwrap();
        let w2 = CosignatureSigner::from_secret_bytes("w2.example", [4u8; 32]).unwrap();
        (log.vkey(), clock.vkey(), w1.vkey(), w2.vkey())
    }

    #[test]
    fn parse_and_round_trip() {
        let (log, clock, w1, w2) = keys();
        let text = format!(
            "# aims-evidence trust policy\n\nlog {log}\n  witness clock {clock}\nwitness\tw1 {w1} https://w1.example/\nwitness w2 {w2}\ngroup ext 1 w1 w2\ngroup all-of clock-and all\n"
        );
        // `group all-of clock-and all` is malformed (undefined members): check separately.
        assert!(TrustPolicy::parse(&text).is_err());
        let text = format!(
            "# aims-evidence trust policy\n\nlog {log}\n  witness clock {clock}\nwitness\tw1 {w1} https://w1.example/\nwitness w2 {w2}\ngroup ext 1 w1 w2\ngroup q all clock ext\nquorum q\n"
        );
        let p = TrustPolicy::parse(&text).unwrap();
        assert_eq!(p.logs.len(), 1);
        assert_eq!(p.witnesses.len(), 3);
        assert_eq!(p.quorum, Quorum::Named("q".into()));
        assert!(p.log("aims.example.org/ledger").is_some());
        assert_eq!(p.witness("clock").unwrap().name(), "aims.example.org/clock");
        assert_eq!(p.witnesses[1].url.as_deref(), Some("https://w1.example/"));
        assert_eq!(TrustPolicy::parse(&p.to_text()).unwrap(), p);
        assert!(p.quorum_satisfied(&["clock", "w2"]));
        assert!(!p.quorum_satisfied(&["clock"]));
        assert!(!p.quorum_satisfied(&["w1", "w2"]));
    }

    #[test]
    fn simple_policy_without_quorum_line() {
        let (log, clock, _, _) = keys();
        let p = TrustPolicy::parse(&format!("log {log}\nwitness clock {clock}\n")).unwrap();
        assert_eq!(p.quorum, Quorum::None);
        assert!(p.quorum_satisfied(&[]));
        assert_eq!(
            p.to_text(),
            format!("log {log}\nwitness clock {clock}\nquorum none\n")
        );
        let p = TrustPolicy::parse(&format!("log {log}\nwitness clock {clock}\nquorum clock\n"))
            .unwrap();
        assert!(p.quorum_satisfied(&["clock"]));
        assert!(!p.quorum_satisfied(&[]));
    }

    #[test]
    fn rejected_policies() {
        let (log, clock, w1, _) = keys();
        for bad in [
            format!("log {clock}\n"),                          // 0x04 as log
            format!("witness clock {log}\n"),                  // 0x01 as witness
            format!("log {log}\nlog {log}\n"),                 // duplicate log
            format!("witness a {clock}\nwitness b {clock}\n"), // duplicate key
            format!("witness a {clock}\nwitness a {w1}\n"),    // duplicate name
            format!("witness none {clock}\n"),                 // reserved
            format!("witness a {clock}\ngroup g 2 a\n"),       // k > n
            format!("witness a {clock}\ngroup g 0 a\n"),       // k = 0
            format!("witness a {clock}\ngroup g any a a\n"),   // repeated member
            format!("witness a {clock}\ngroup g any\n"),       // no members
            format!("group g any a\nwitness a {clock}\n"),     // used before defined
            "quorum x\n".to_owned(),                           // undefined
            "quorum none\nquorum none\n".to_owned(),           // twice
            format!("log {log}\r\n"),                          // CR
            format!("logs {log}\n"),                           // keyword
            format!("log {}\n", log.replace("+", "+0")),       // malformed vkey
            format!("log {log} url extra\n"),                  // too many items
        ] {
            assert!(TrustPolicy::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
