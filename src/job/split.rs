//! Splitting a comment over the server's length limit into numbered parts, cutting at
//! paragraph breaks, line breaks or spaces when possible.
//!
//! Lengths are UTF-16 code units, as the server counts them (JS string length), and a part
//! never ends inside a character, so never inside a surrogate pair.

/// The length the server sees: UTF-16 code units of the trimmed text.
pub fn server_len(text: &str) -> usize {
    text.trim().encode_utf16().count()
}

/// Split `text` (already trimmed) into parts of at most `max` UTF-16 code units each, every
/// part starting with `(part i/n)` on its own line. A text within the limit is returned as is.
pub(crate) fn split_comment(text: &str, max: usize) -> Vec<String> {
    if server_len(text) <= max {
        return vec![text.to_string()];
    }
    let chars: Vec<char> = text.chars().collect();
    let mut total = 2usize;
    loop {
        // The marker is ASCII: its char count is its UTF-16 length.
        let marker = format!("(part {total}/{total})\n").len();
        let chunks = chunk(&chars, max.saturating_sub(marker).max(1));
        if chunks.len() <= total {
            let n = chunks.len();
            return chunks
                .into_iter()
                .enumerate()
                .map(|(i, c)| format!("(part {}/{n})\n{c}", i + 1))
                .collect();
        }
        total = chunks.len();
    }
}

/// Greedy chunks of at most `budget` UTF-16 units, trimmed, cut at the best break.
fn chunk(chars: &[char], budget: usize) -> Vec<String> {
    // offsets[i]: UTF-16 units before chars[i]; offsets[len] is the whole length.
    let offsets: Vec<usize> = std::iter::once(0)
        .chain(chars.iter().scan(0, |acc, c| {
            *acc += c.len_utf16();
            Some(*acc)
        }))
        .collect();
    let mut out = Vec::new();
    let mut pos = 0;
    while offsets[chars.len()] - offsets[pos] > budget {
        // The most whole chars that fit, but at least one so the loop always advances.
        let fit = offsets.partition_point(|&o| o <= offsets[pos] + budget) - 1;
        let window = &chars[pos..fit.max(pos + 1)];
        let cut = best_cut(window);
        let piece: String = window[..cut].iter().collect();
        out.push(piece.trim_end().to_string());
        pos += cut;
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
    }
    let rest: String = chars[pos..].iter().collect();
    if !rest.trim().is_empty() {
        out.push(rest.trim_end().to_string());
    }
    out
}

/// Where to cut a full window: after the last paragraph break, else line break, else
/// whitespace, in its second half; else at the window's end.
fn best_cut(window: &[char]) -> usize {
    let half = window.len() / 2;
    let after_last =
        |pred: &dyn Fn(usize) -> bool| (half..window.len()).rev().find(|&i| pred(i)).map(|i| i + 1);
    after_last(&|i| i > 0 && window[i] == '\n' && window[i - 1] == '\n')
        .or_else(|| after_last(&|i| window[i] == '\n'))
        .or_else(|| after_last(&|i| window[i].is_whitespace()))
        .unwrap_or(window.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(split_comment("hello", 5000), ["hello"]);
    }

    #[test]
    fn long_text_splits_into_numbered_parts_within_limit() {
        let para = "word ".repeat(300); // 1500 chars
        let text = format!("{para}\n\n{para}\n\n{para}\n\n{para}")
            .trim()
            .to_string();
        let parts = split_comment(&text, 5000);
        assert_eq!(parts.len(), 2);
        for (i, p) in parts.iter().enumerate() {
            assert!(p.chars().count() <= 5000);
            assert!(p.starts_with(&format!("(part {}/2)\n", i + 1)));
        }
        // Cut at a paragraph break: no word is broken.
        assert!(parts[0].ends_with("word"));
        let joined: String = parts.iter().map(|p| &p[11..]).collect::<Vec<_>>().join(" ");
        assert_eq!(
            joined.split_whitespace().count(),
            text.split_whitespace().count()
        );
    }

    #[test]
    fn text_without_spaces_is_cut_hard() {
        let text = "é".repeat(12_000);
        let parts = split_comment(&text, 5000);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 5000));
        let body: usize = parts
            .iter()
            .map(|p| p.split_once('\n').unwrap().1.chars().count())
            .sum();
        assert_eq!(body, 12_000);
        assert!(parts[2].starts_with("(part 3/3)\n"));
    }

    #[test]
    fn parts_fit_in_utf16_units_without_breaking_surrogate_pairs() {
        let text = "\u{1F600}".repeat(6000); // 12,000 UTF-16 units
        let parts = split_comment(&text, 5000);
        assert_eq!(parts.len(), 3);
        for p in &parts {
            assert!(server_len(p) <= 5000, "{}", server_len(p));
        }
        let body: String = parts
            .iter()
            .map(|p| p.split_once('\n').unwrap().1)
            .collect();
        assert_eq!(body, text);
    }

    #[test]
    fn wide_text_still_cuts_at_spaces() {
        // 2,000 chars but 3,500 UTF-16 units per paragraph; words of 5 emoji plus a space.
        let word = "\u{1F600}".repeat(5);
        let para = vec![word.as_str(); 350].join(" ");
        let text = format!("{para}\n\n{para}");
        let parts = split_comment(&text, 5000);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| server_len(p) <= 5000));
        assert_eq!(parts[0], format!("(part 1/2)\n{para}"));
        assert_eq!(parts[1], format!("(part 2/2)\n{para}"));
    }

    #[test]
    fn server_len_counts_utf16_units_after_trimming() {
        assert_eq!(server_len("  \u{1F600}é\n"), 3);
    }
}
