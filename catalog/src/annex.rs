//! The fixed structure of ISO/IEC 42001:2023 Annex A, hard-coded as the standard's facts.
//!
//! The catalog data (`controls.yaml`) may phrase descriptions any way it likes, but its IDs
//! are checked against this list, which is kept separately from the data on purpose: a data
//! file cannot vouch for itself. Source: `shared/reference/annex-a.md` §1.2.

use std::cmp::Ordering;

/// The 38 control IDs of Annex A, in the standard's order.
pub const ANNEX_A_CONTROLS: [&str; 38] = [
    "A.2.2", "A.2.3", "A.2.4", "A.3.2", "A.3.3", "A.4.2", "A.4.3", "A.4.4", "A.4.5", "A.4.6",
    "A.5.2", "A.5.3", "A.5.4", "A.5.5", "A.6.1.2", "A.6.1.3", "A.6.2.2", "A.6.2.3", "A.6.2.4",
    "A.6.2.5", "A.6.2.6", "A.6.2.7", "A.6.2.8", "A.7.2", "A.7.3", "A.7.4", "A.7.5", "A.7.6",
    "A.8.2", "A.8.3", "A.8.4", "A.8.5", "A.9.2", "A.9.3", "A.9.4", "A.10.2", "A.10.3", "A.10.4",
];

/// The nine control objectives (groups) of Annex A.
pub const ANNEX_A_GROUPS: [&str; 9] = [
    "A.2", "A.3", "A.4", "A.5", "A.6", "A.7", "A.8", "A.9", "A.10",
];

/// The groups shown on the dashboard (AI system life cycle and data).
pub const DASHBOARD_GROUPS: [&str; 2] = ["A.6", "A.7"];

/// True when `id` is one of the 38 Annex A controls.
pub fn is_annex_a_control(id: &str) -> bool {
    ANNEX_A_CONTROLS.contains(&id)
}

/// The objective (group) a control ID belongs to: `A.6.2.4` → `A.6`.
pub fn group_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("A.")?;
    let first = rest.split('.').next()?;
    Some(&id[..2 + first.len()])
}

fn numeric_parts(id: &str) -> Vec<u32> {
    id.trim_start_matches("A.")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
        .collect()
}

/// Orders control IDs numerically (`A.9.4` before `A.10.2`, `A.6.2.8` before `A.7.2`).
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    numeric_parts(a)
        .cmp(&numeric_parts(b))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered() {
        let mut sorted = ANNEX_A_CONTROLS.to_vec();
        sorted.sort_by(|a, b| compare_ids(a, b));
        assert_eq!(sorted, ANNEX_A_CONTROLS.to_vec());
        sorted.dedup();
        assert_eq!(sorted.len(), 38);
    }

    #[test]
    fn groups_of_controls() {
        assert_eq!(group_of("A.6.2.4"), Some("A.6"));
        assert_eq!(group_of("A.10.3"), Some("A.10"));
        assert_eq!(group_of("B.1"), None);
        for id in ANNEX_A_CONTROLS {
            assert!(ANNEX_A_GROUPS.contains(&group_of(id).unwrap_or("")));
        }
        assert!(!is_annex_a_control("A.6.2.1"));
    }
}
