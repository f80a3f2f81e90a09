//! Text from outside made safe to echo: in an error message, a log line, an id
//! shown back.

/// Makes user input safe to echo in an error: no control or markup characters, at
/// most 64 characters (longer input ends with `...`).
pub fn sanitize(s: &str) -> String {
    sanitize_to(s, 64)
}

/// [`sanitize`] with another length limit.
pub fn sanitize_to(s: &str, max_chars: usize) -> String {
    masked(s, max_chars, "<>&\"'\\")
}

/// At most `max_chars` of `s` (then `...`), each control character and each of
/// `markup` replaced by `?`.
pub fn masked(s: &str, max_chars: usize, markup: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    for c in chars.by_ref().take(max_chars) {
        out.push(if c.is_control() || markup.contains(c) { '?' } else { c });
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_markup_and_control_characters_and_truncates() {
        assert_eq!(sanitize("<script>\u{0}"), "?script??");
        assert_eq!(sanitize(&"x".repeat(70)), format!("{}...", "x".repeat(64)));
        assert_eq!(sanitize(&"x".repeat(64)), "x".repeat(64));
        assert_eq!(sanitize("Lead ID"), "Lead ID");
    }

    #[test]
    fn sanitize_to_only_marks_a_real_cut() {
        let msg = "m".repeat(150);
        assert_eq!(sanitize_to(&msg, 200), msg, "nothing cut, no ellipsis");
        assert_eq!(sanitize_to(&msg, 100), format!("{}...", "m".repeat(100)));
    }
}
