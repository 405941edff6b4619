//! "Did you mean …?" for misspelt config keys, values and threshold metrics, the way clap
//! suggests flags: the known word closest by Jaro similarity, if it is close enough.

/// The candidate closest to `found`, if any is similar enough (Jaro > 0.7, clap's cut-off).
pub(crate) fn did_you_mean<'a>(
    found: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro(found, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_known_word_or_nothing() {
        let keys = ["name", "executor", "vus", "duration", "iterations"];
        assert_eq!(did_you_mean("duratoin", keys), Some("duration"));
        assert_eq!(did_you_mean("vuss", keys), Some("vus"));
        assert_eq!(did_you_mean("iteration", keys), Some("iterations"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
