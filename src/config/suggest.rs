//! "Did you mean ...?" for misspelt keys and names.

/// The option closest to `written`, if one is close enough to be a likely typo.
pub(super) fn closest<'a>(
    written: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let written = written.to_ascii_lowercase();
    // About one edit in three characters, at least one: "algoritm" finds "algorithm",
    // "tokn" finds "token", "xyz" finds nothing.
    let limit = (written.chars().count() / 3).max(1);
    options
        .into_iter()
        .map(|o| {
            (
                strsim::damerau_levenshtein(&written, &o.to_ascii_lowercase()),
                o,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

/// `" (did you mean \"x\"?)"`, or nothing.
pub fn hint<'a>(written: &str, options: impl IntoIterator<Item = &'a str>) -> String {
    closest(written, options)
        .map(|o| format!(" (did you mean {o:?}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key_and_nonsense_finds_nothing() {
        let keys = ["algorithm", "header", "prefix", "encoding", "payload"];
        assert_eq!(closest("algoritm", keys), Some("algorithm"));
        assert_eq!(closest("Heder", keys), Some("header"));
        assert_eq!(closest("xyz", keys), None);
        assert_eq!(closest("strpie", ["stripe", "github"]), Some("stripe"));
        assert_eq!(hint("paylod", keys), " (did you mean \"payload\"?)");
    }
}
