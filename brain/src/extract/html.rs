//! HTML with scraper (html5ever): scripts, styles, navigation and footers dropped; `h1`–`h6`
//! start sections; block elements break paragraphs; table cells are joined with " | ".
//!
//! The tree is walked with an explicit cursor rather than recursion, so deeply nested markup
//! cannot overflow the stack.

use scraper::{Html, Node};

use super::{Extracted, Section, text};

/// Elements whose content is never text for the reader.
const DROPPED: &[&str] = &[
    "script", "style", "nav", "footer", "noscript", "template", "svg", "iframe", "object",
    "canvas", "select", "button",
];

/// Elements that start and end a paragraph.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "form",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "ul",
];

pub(super) fn extract(source: &str) -> Extracted {
    let document = Html::parse_document(source);
    let mut walker = Walker::default();
    let mut next = Some(document.tree.root());
    while let Some(node) = next {
        if walker.open(node.value()) {
            if let Some(child) = node.first_child() {
                next = Some(child);
                continue;
            }
            walker.close(node.value());
        }
        // Move to the next sibling, closing every parent left on the way up.
        let mut current = node;
        next = loop {
            if let Some(sibling) = current.next_sibling() {
                break Some(sibling);
            }
            match current.parent() {
                Some(parent) => {
                    walker.close(parent.value());
                    current = parent;
                }
                None => break None,
            }
        };
    }
    walker.finish()
}

#[derive(Default)]
struct Walker {
    title: String,
    in_title: bool,
    first_h1: Option<String>,
    sections: Vec<Section>,
    heading: Option<String>,
    text: String,
    /// The text of the heading being read, if inside one.
    heading_text: Option<String>,
    heading_is_h1: bool,
    pre: usize,
    /// Nesting depth of table cells: inside one, blocks do not break the row.
    cell: usize,
    /// For each open table row, whether it has a cell yet.
    rows: Vec<bool>,
}

impl Walker {
    /// Handles entering a node; false when its children must be skipped.
    fn open(&mut self, node: &Node) -> bool {
        match node {
            Node::Document | Node::Fragment => true,
            Node::Text(text) => {
                self.push_text(text);
                false
            }
            Node::Element(element) => {
                let name = element.name();
                if DROPPED.contains(&name) {
                    return false;
                }
                match name {
                    "title" => self.in_title = true,
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.open_heading(name == "h1"),
                    "br" => self.push_break("\n"),
                    "tr" => {
                        self.push_break("\n");
                        self.rows.push(false);
                    }
                    "td" | "th" => {
                        let had_cell = self
                            .rows
                            .last_mut()
                            .map(|has_cell| std::mem::replace(has_cell, true));
                        if had_cell == Some(true) {
                            self.push_markup(" | ");
                        }
                        self.cell += 1;
                    }
                    "pre" => {
                        self.pre += 1;
                        self.push_break("\n\n");
                    }
                    _ if BLOCKS.contains(&name) => self.push_break("\n\n"),
                    _ => {}
                }
                true
            }
            _ => false,
        }
    }

    /// Handles leaving a node that was entered.
    fn close(&mut self, node: &Node) {
        let Node::Element(element) = node else {
            return;
        };
        let name = element.name();
        match name {
            "title" => self.in_title = false,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.close_heading(),
            "tr" => {
                // The next row (or the end of the table) breaks the line.
                self.rows.pop();
            }
            "td" | "th" => self.cell = self.cell.saturating_sub(1),
            "pre" => {
                self.pre = self.pre.saturating_sub(1);
                self.push_break("\n\n");
            }
            _ if BLOCKS.contains(&name) => self.push_break("\n\n"),
            _ => {}
        }
    }

    fn push_text(&mut self, raw: &str) {
        if self.in_title {
            self.title.push_str(raw);
        } else if let Some(heading) = self.heading_text.as_mut() {
            heading.push_str(raw);
        } else if self.pre > 0 && self.cell == 0 {
            self.text.push_str(raw);
        } else {
            // Outside <pre>, HTML renders every whitespace run as one space.
            self.text
                .extend(raw.chars().map(|c| if c.is_whitespace() { ' ' } else { c }));
        }
    }

    /// A line or paragraph break; inside a table cell, a space so the row stays on one line.
    fn push_break(&mut self, separator: &str) {
        if self.heading_text.is_some() || self.in_title {
            return;
        }
        self.text
            .push_str(if self.cell > 0 { " " } else { separator });
    }

    fn push_markup(&mut self, markup: &str) {
        if self.heading_text.is_none() && !self.in_title {
            self.text.push_str(markup);
        }
    }

    fn open_heading(&mut self, is_h1: bool) {
        if self.heading_text.is_some() {
            return;
        }
        self.flush();
        self.heading_text = Some(String::new());
        self.heading_is_h1 = is_h1;
    }

    fn close_heading(&mut self) {
        let Some(heading) = self.heading_text.take() else {
            return;
        };
        let heading = text::one_line(&heading);
        if heading.is_empty() {
            return;
        }
        if self.heading_is_h1 && self.first_h1.is_none() {
            self.first_h1 = Some(heading.clone());
        }
        self.heading = Some(heading);
    }

    fn flush(&mut self) {
        let text = text::clean_lines(&std::mem::take(&mut self.text));
        if !text.is_empty() {
            self.sections.push(Section {
                heading: self.heading.take(),
                page: None,
                text,
            });
        }
    }

    fn finish(mut self) -> Extracted {
        self.flush();
        let title = text::one_line(&self.title);
        let title = if title.is_empty() {
            self.first_h1
        } else {
            Some(title)
        };
        Extracted {
            title,
            sections: self.sections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!DOCTYPE html>
<html>
<head>
  <title> Sleep   guide </title>
  <style>body { color: red }</style>
  <script>var tracking = "do not index";</script>
</head>
<body>
  <nav><a href="/">Home</a> <a href="/about">About</a></nav>
  <p>Welcome to the <b>guide</b>.</p>
  <h1>Sleep basics</h1>
  <p>Go to bed
     at the same time.</p>
  <p>Line one<br>Line two</p>
  <h2>Schedule</h2>
  <table>
    <tr><th>Day</th><th>Hours</th></tr>
    <tr><td><p>Monday</p></td><td>8</td></tr>
  </table>
  <ul><li>Dark room</li><li>No screens</li></ul>
  <noscript>Enable JavaScript</noscript>
  <footer>© 2025 Coach</footer>
</body>
</html>"#;

    #[test]
    fn headings_start_sections_and_chrome_is_dropped() {
        let extracted = extract(PAGE);
        assert_eq!(extracted.title.as_deref(), Some("Sleep guide"));
        assert_eq!(
            extracted.sections,
            vec![
                Section {
                    heading: None,
                    page: None,
                    text: "Welcome to the guide.".to_string()
                },
                Section {
                    heading: Some("Sleep basics".to_string()),
                    page: None,
                    text: "Go to bed at the same time.\n\nLine one\nLine two".to_string(),
                },
                Section {
                    heading: Some("Schedule".to_string()),
                    page: None,
                    text: "Day | Hours\nMonday | 8\n\nDark room\n\nNo screens".to_string(),
                },
            ]
        );
    }

    #[test]
    fn the_first_h1_is_the_title_without_a_title_element() {
        let extracted = extract("<h1>Morning <em>routine</em></h1><p>Wake up.</p>");
        assert_eq!(extracted.title.as_deref(), Some("Morning routine"));
        assert_eq!(
            extracted.sections[0].heading.as_deref(),
            Some("Morning routine")
        );
        assert_eq!(extracted.sections[0].text, "Wake up.");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let source = format!(
            "{}deep text{}",
            "<div>".repeat(5_000),
            "</div>".repeat(5_000)
        );
        let extracted = extract(&source);
        assert_eq!(extracted.sections[0].text, "deep text");
    }
}
