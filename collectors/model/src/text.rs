//! Text as the export formats must carry it, defined once for the writer (the server's OSCAL
//! output) and the reader (`aims-verify`), so both agree byte for byte on what a value looks
//! like after it went through a format's rules.

/// An OSCAL `StringDatatype` (`^\S(.*\S)?$`): one line, no leading or trailing whitespace, not
/// empty. Line breaks and control characters become spaces, the ends are trimmed, and an empty
/// result is `-`. Values the ledger accepts never hold line or paragraph separators (see
/// [`crate::record::validate_text`]), so a locator survives unchanged unless it has leading or
/// trailing whitespace; the verifier compares against this same function either way.
pub fn oscal_string(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    // Rust's whitespace plus U+FEFF, which ECMAScript's `\s` (the schema's regex) also counts.
    let t = one.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        "-".to_owned()
    } else {
        t.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_trimmed_and_otherwise_unchanged() {
        assert_eq!(oscal_string("  a\nb \u{2028} "), "a b");
        assert_eq!(oscal_string(""), "-");
        // Inner Unicode spaces are kept: only what the datatype forbids changes.
        assert_eq!(
            oscal_string("s3://b/a\u{a0}b\u{3000}c"),
            "s3://b/a\u{a0}b\u{3000}c"
        );
    }
}
