//! "Did you mean" suggestions for misspelt names.

/// The closest candidate to `input`, if one is close enough to be a plausible typo.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let budget = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(input, c), c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(closest("rol", ["role", "cloud", "endpoint"]), Some("role"));
        assert_eq!(closest("regoin", ["region", "backup"]), Some("region"));
        assert_eq!(closest("instance_typ", ["instance_type", "image"]), Some("instance_type"));
        assert_eq!(closest("zzz", ["role", "cloud"]), None);
    }
}
