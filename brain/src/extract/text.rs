//! Whitespace normalisation shared by the extractors. Three strengths: `clean_block` keeps
//! lines and indentation (Markdown, plain text), `clean_lines` keeps lines but collapses spaces
//! (HTML, Word), `clean_flowing` also joins the lines of a paragraph (PDF page layout).

const SOFT_HYPHEN: char = '\u{ad}';

/// Text whose layout is the author's own: line endings unified, trailing spaces and control
/// characters removed, runs of blank lines reduced to one, indentation kept.
pub(super) fn clean_block(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    let mut blank = false;
    for line in unified.split('\n') {
        let line: String = line
            .trim_end()
            .chars()
            .filter(|c| *c == '\t' || !c.is_control())
            .collect();
        if line.trim().is_empty() {
            blank = true;
            continue;
        }
        push_line(&mut out, &line, blank);
        blank = false;
    }
    out
}

/// Text whose line breaks carry meaning (HTML, Word): spaces collapsed within each line, lines
/// trimmed, runs of blank lines reduced to one.
pub(super) fn clean_lines(text: &str) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in tidy_lines(text) {
        let line = line.replace(SOFT_HYPHEN, "");
        let line = line.trim();
        if line.is_empty() {
            blank = true;
            continue;
        }
        push_line(&mut out, line, blank);
        blank = false;
    }
    out
}

/// Text laid out on a page (PDF): the lines of a paragraph joined with spaces, words hyphenated
/// across a line break joined again, paragraphs separated by one blank line.
pub(super) fn clean_flowing(text: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in tidy_lines(text) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        join_line(&mut current, &line);
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
        .iter()
        .map(|paragraph| paragraph.replace(SOFT_HYPHEN, "").trim().to_string())
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// All whitespace runs collapsed to single spaces, for headings, titles and table cells.
pub(super) fn one_line(text: &str) -> String {
    text.replace(SOFT_HYPHEN, "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn push_line(out: &mut String, line: &str, after_blank: bool) {
    if !out.is_empty() {
        out.push_str(if after_blank { "\n\n" } else { "\n" });
    }
    out.push_str(line);
}

/// Lines with unified endings (a form feed is a paragraph break), control and zero-width
/// characters removed, whitespace runs collapsed to one space, both ends trimmed.
fn tidy_lines(text: &str) -> Vec<String> {
    let unified = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\u{c}', "\n\n");
    unified.split('\n').map(tidy_line).collect()
}

fn tidy_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut space = false;
    for c in line.chars() {
        if c.is_whitespace() {
            space = true;
        } else if c.is_control() || matches!(c, '\u{feff}' | '\u{200b}') {
            continue;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

fn join_line(paragraph: &mut String, line: &str) {
    if paragraph.is_empty() {
        paragraph.push_str(line);
        return;
    }
    if paragraph.ends_with(SOFT_HYPHEN) {
        let _ = paragraph.pop();
        paragraph.push_str(line);
        return;
    }
    if ends_with_word_hyphen(paragraph) && line.chars().next().is_some_and(char::is_lowercase) {
        let _ = paragraph.pop();
        paragraph.push_str(line);
        return;
    }
    paragraph.push(' ');
    paragraph.push_str(line);
}

fn ends_with_word_hyphen(text: &str) -> bool {
    let mut chars = text.chars().rev();
    chars.next() == Some('-') && chars.next().is_some_and(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flowing_text_joins_lines_and_hyphenated_words() {
        let raw = "\n  The  habit loop has three\nparts: cue, rou-\ntine and re\u{ad}\nward.\n\n\n\nA new   para-\nGraph starts here.\x0cNext page  ";
        assert_eq!(
            clean_flowing(raw),
            "The habit loop has three parts: cue, routine and reward.\n\nA new para- Graph starts here.\n\nNext page"
        );
    }

    #[test]
    fn lines_keep_their_breaks_but_lose_extra_spaces() {
        assert_eq!(
            clean_lines("  a \t b \n c\u{a0}d\n\n\n\ne  "),
            "a b\nc d\n\ne"
        );
    }

    #[test]
    fn blocks_keep_indentation() {
        assert_eq!(
            clean_block("```\n    code  \n```\n\n\n\ntext"),
            "```\n    code\n```\n\ntext"
        );
    }

    #[test]
    fn one_line_collapses_everything() {
        assert_eq!(one_line("  Getting\n  started \t"), "Getting started");
    }
}
