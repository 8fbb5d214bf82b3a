//! Text shown to people: anything that came from outside (record names and values, set
//! identifiers, comments, a health check's target) is printed with its control characters
//! escaped, so it cannot drive the operator's terminal (escape sequences, a changed title, a
//! hidden line).

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) as `\u{XX}`; unchanged when it has none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:02x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::escape("plain text"), "plain text");
        assert_eq!(
            super::escape("a\u{0}\u{1b}[31m\u{1b}]0;PWNED\u{7}\u{9b}"),
            "a\\u{00}\\u{1b}[31m\\u{1b}]0;PWNED\\u{07}\\u{9b}"
        );
    }
}
