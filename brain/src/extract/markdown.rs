//! Markdown: ATX headings (`#` to `######`) start sections; everything else, code fences
//! included, is kept as written. A `#` line inside a fence is code, not a heading.

use super::{Extracted, Section, text};

pub(super) fn extract(source: &str) -> Extracted {
    let mut sections = Vec::new();
    let mut title = None;
    let mut heading: Option<String> = None;
    let mut body = String::new();
    let mut fence: Option<Fence> = None;

    for line in source.lines() {
        if let Some(open) = fence {
            if open.is_closed_by(line) {
                fence = None;
            }
        } else if let Some(open) = Fence::opened_by(line) {
            fence = Some(open);
        } else if let Some((level, text)) = atx_heading(line) {
            push_section(&mut sections, heading.take(), &body);
            body.clear();
            if level == 1 && title.is_none() && !text.is_empty() {
                title = Some(text.clone());
            }
            heading = (!text.is_empty()).then_some(text);
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    push_section(&mut sections, heading, &body);
    Extracted { title, sections }
}

fn push_section(sections: &mut Vec<Section>, heading: Option<String>, body: &str) {
    let text = text::clean_block(body);
    if !text.is_empty() {
        sections.push(Section {
            heading,
            page: None,
            text,
        });
    }
}

/// The level and text of an ATX heading line: up to three spaces of indentation, one to six
/// `#`, then a space or the end of the line; a closing run of `#` is dropped.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let rest = strip_indent(line)?;
    let level = rest.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &rest[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let content = rest.trim();
    let without_closing = content.trim_end_matches('#');
    let content = if without_closing.is_empty() {
        ""
    } else if without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        content
    };
    Some((level, text::one_line(content)))
}

/// The line without up to three leading spaces; `None` for four or more (an indented code block).
fn strip_indent(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    (indent <= 3).then(|| &line[indent..])
}

/// An open fenced code block: its character and length.
#[derive(Clone, Copy)]
struct Fence {
    marker: char,
    length: usize,
}

impl Fence {
    fn opened_by(line: &str) -> Option<Self> {
        let rest = strip_indent(line)?;
        let marker = rest.chars().next().filter(|c| matches!(c, '`' | '~'))?;
        let length = rest.chars().take_while(|c| *c == marker).count();
        if length < 3 {
            return None;
        }
        // A backtick fence's info string may not contain backticks.
        if marker == '`' && rest[length..].contains('`') {
            return None;
        }
        Some(Self { marker, length })
    }

    fn is_closed_by(self, line: &str) -> bool {
        let Some(rest) = strip_indent(line) else {
            return false;
        };
        let length = rest.chars().take_while(|c| *c == self.marker).count();
        length >= self.length && rest[length * self.marker.len_utf8()..].trim().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "\
Intro before any heading.

# Coach Bot #

Helps you build habits.

```bash
# install it
cargo install coach
```

## Usage
Run it daily.
    # indented code, not a heading
###### Deep
#hashtag is not a heading
####### seven is not a heading
";

    #[test]
    fn atx_headings_start_sections_and_fences_stay_text() {
        let extracted = extract(README);
        assert_eq!(extracted.title.as_deref(), Some("Coach Bot"));
        let headings: Vec<_> = extracted
            .sections
            .iter()
            .map(|s| s.heading.as_deref())
            .collect();
        assert_eq!(
            headings,
            vec![None, Some("Coach Bot"), Some("Usage"), Some("Deep")]
        );
        assert_eq!(extracted.sections[0].text, "Intro before any heading.");
        assert_eq!(
            extracted.sections[1].text,
            "Helps you build habits.\n\n```bash\n# install it\ncargo install coach\n```"
        );
        assert_eq!(
            extracted.sections[2].text,
            "Run it daily.\n    # indented code, not a heading"
        );
        assert_eq!(
            extracted.sections[3].text,
            "#hashtag is not a heading\n####### seven is not a heading"
        );
    }

    #[test]
    fn heading_only_sections_are_dropped() {
        let extracted = extract("# Title\n## Empty\n### Filled\ntext\n");
        assert_eq!(extracted.title.as_deref(), Some("Title"));
        assert_eq!(extracted.sections.len(), 1);
        assert_eq!(extracted.sections[0].heading.as_deref(), Some("Filled"));
        assert_eq!(extracted.sections[0].text, "text");
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end() {
        let extracted = extract("```\n# not a heading\n");
        assert_eq!(extracted.sections.len(), 1);
        assert_eq!(extracted.sections[0].heading, None);
        assert_eq!(extracted.sections[0].text, "```\n# not a heading");
    }
}
