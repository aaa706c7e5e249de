//! Text as Discord shows it: names cleaned and escaped (they are the one thing in a message
//! its guild did not write), and texts cut to a limit.

/// Characters Discord's markdown, mentions, links or emoji syntax give a meaning to;
/// [`escape_markdown`] puts a backslash before each.
pub const MARKDOWN_CHARS: [char; 16] = [
    '\\', '*', '_', '~', '`', '|', '>', '<', '#', '-', '+', '[', ']', '(', ')', ':',
];

/// Longest name shown. Discord's names have at most 32 characters, so only odd data is cut,
/// and no name can push the rest of a message past its limit.
const MAX_NAME_CHARS: usize = 64;

const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// `text` as Discord will show it literally: a backslash before each of [`MARKDOWN_CHARS`],
/// and before a dot that only digits precede (`1. ` starts a list); a zero-width space after
/// each `@`, so `@everyone`, `@here` or `<@id>` written in a name never ping. Discord drops a
/// backslash before any punctuation when it renders, so the escaped text reads as the
/// original.
#[must_use]
pub fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 4);
    let mut only_digits_before = true;
    for c in text.chars() {
        if MARKDOWN_CHARS.contains(&c) || (c == '.' && only_digits_before) {
            escaped.push('\\');
        }
        escaped.push(c);
        if c == '@' {
            escaped.push(ZERO_WIDTH_SPACE);
        }
        only_digits_before = only_digits_before && c.is_ascii_digit();
    }
    escaped
}

/// A name as it can be shown on one line: line breaks become spaces; control characters and
/// bidirectional controls are dropped (they would hide or reorder the text around the name);
/// at most [`MAX_NAME_CHARS`]. `None` when nothing is left to show.
pub(crate) fn clean_name(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => Some(' '),
            c if c.is_control() || is_bidi_control(c) => None,
            c => Some(c),
        })
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| fit(cleaned, MAX_NAME_CHARS))
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` (already trimmed) within `limit` characters: cut on a character boundary and ended
/// with an ellipsis when longer.
pub(crate) fn fit(text: &str, limit: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(limit.saturating_sub(1)) else {
        return text.to_owned();
    };
    if text[cut..].chars().nth(1).is_none() {
        // Exactly `limit` characters.
        return text.to_owned();
    }
    let mut kept = &text[..cut];
    // A backslash left last would escape the ellipsis instead of what it was escaping.
    let trailing_backslashes = kept.len() - kept.trim_end_matches('\\').len();
    if trailing_backslashes % 2 == 1 {
        kept = &kept[..kept.len() - 1];
    }
    let mut fitted = kept.trim_end().to_owned();
    fitted.push('…');
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_names_is_escaped() {
        let table = [
            ("plain name", "plain name"),
            ("**x**", r"\*\*x\*\*"),
            ("__under__", r"\_\_under\_\_"),
            (
                "~~s~~ ||spoiler|| `code`",
                r"\~\~s\~\~ \|\|spoiler\|\| \`code\`",
            ),
            ("# Big", r"\# Big"),
            ("-# small", r"\-\# small"),
            ("> quote", r"\> quote"),
            (
                "[link](https://x.example)",
                r"\[link\]\(https\://x.example\)",
            ),
            ("<#123> <t:1:R>", r"\<\#123\> \<t\:1\:R\>"),
            ("1. first", r"1\. first"),
            ("v1.2", "v1.2"),
            (r"back\slash", r"back\\slash"),
            ("Zoë 管理者 🙂", "Zoë 管理者 🙂"),
        ];
        for (name, escaped) in table {
            assert_eq!(escape_markdown(name), escaped, "{name:?}");
        }
    }

    #[test]
    fn mentions_in_names_cannot_ping() {
        assert_eq!(escape_markdown("@everyone"), "@\u{200B}everyone");
        assert_eq!(escape_markdown("hi @here"), "hi @\u{200B}here");
        assert_eq!(escape_markdown("<@123>"), "\\<@\u{200B}123\\>");
        assert_eq!(escape_markdown("<@&5>"), "\\<@\u{200B}&5\\>");
    }

    #[test]
    fn names_are_cleaned_to_one_visible_line() {
        assert_eq!(clean_name("  Nova  ").as_deref(), Some("Nova"));
        assert_eq!(clean_name("two\nlines").as_deref(), Some("two lines"));
        assert_eq!(clean_name("\u{202E}nimda").as_deref(), Some("nimda"));
        assert_eq!(clean_name("bell\u{7}").as_deref(), Some("bell"));
        for nothing in ["", "   ", "\n\t", "\u{202E}\u{200F}"] {
            assert_eq!(clean_name(nothing), None, "{nothing:?}");
        }
        let long = "n".repeat(100);
        let shown = clean_name(&long).expect("a name");
        assert_eq!(shown.chars().count(), MAX_NAME_CHARS);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn fitting_cuts_on_a_character_boundary_with_an_ellipsis() {
        assert_eq!(fit("short", 5), "short");
        assert_eq!(fit("shorter", 5), "shor…");
        assert_eq!(fit("ééééé", 4), "ééé…");
        assert_eq!(fit("a🙂🙂🙂", 3), "a🙂…");
        // No whitespace before the ellipsis.
        assert_eq!(fit("ab   cdef", 5), "ab…");
        // An escaping backslash is not left to escape the ellipsis; an escaped one stays.
        assert_eq!(fit(r"abc\*def", 5), "abc…");
        assert_eq!(fit(r"ab\\*def", 5), r"ab\\…");
        assert_eq!(fit("x", 1), "x");
        assert_eq!(fit("xy", 1), "…");
    }
}
