//! The Prometheus text exposition format (version 0.0.4), written the same way by both
//! binaries' `/metrics`: a `# HELP` / `# TYPE` head per family, then its samples, with label
//! values escaped.

use std::fmt::{Display, Write};

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Starts a metric family: `# HELP name help` and `# TYPE name kind` (`counter`, `gauge`).
pub fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample: `name{k="v",…} value`, label values escaped.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value with `\`, `"` and line feeds escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaped_samples() {
        let mut out = String::new();
        family(&mut out, "aims_x_total", "Things.", "counter");
        sample(&mut out, "aims_x_total", &[], 3);
        sample(
            &mut out,
            "aims_x_total",
            &[("a", "q\"\\\n"), ("b", "c")],
            1.5,
        );
        assert_eq!(
            out,
            "# HELP aims_x_total Things.\n# TYPE aims_x_total counter\naims_x_total 3\n\
             aims_x_total{a=\"q\\\"\\\\\\n\",b=\"c\"} 1.5\n"
        );
    }
}
