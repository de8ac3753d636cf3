//! Word (.docx) text streamed with quick-xml: paragraphs, headings from paragraph styles, tables
//! as rows of cells joined with " | ", then footnotes and endnotes. Only local element names are
//! compared, so transitional and strict Office Open XML read the same. Every part read counts
//! against one unpacked-size budget, the zip bomb guard.

use std::collections::HashSet;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use zip::ZipArchive;
use zip::result::ZipError;

use super::{ExtractError, Extracted, MAX_UNPACKED_BYTES, Section, text};

const MAIN_PART: &str = "word/document.xml";

/// Containers whose content is not the document's current text: alternate renderings
/// (`mc:Fallback` repeats `mc:Choice`), tracked deletions and moves, and formatting history.
const SKIPPED: &[&str] = &["Fallback", "del", "moveFrom", "pPrChange", "rPrChange"];

/// True when `bytes` is a ZIP archive holding a Word document.
pub(super) fn is_docx(bytes: &[u8]) -> Result<bool, ExtractError> {
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(archive_error)?;
    Ok(archive.index_for_name(MAIN_PART).is_some()
        || (archive.index_for_name("[Content_Types].xml").is_some()
            && archive.file_names().any(|name| name.starts_with("word/"))))
}

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    extract_within(bytes, MAX_UNPACKED_BYTES)
}

fn extract_within(bytes: &[u8], limit: u64) -> Result<Extracted, ExtractError> {
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(archive_error)?;
    let mut parts = Parts {
        archive,
        left: limit,
    };
    let main = main_part(&mut parts)?;
    let Some(document) = parts.read(&main)? else {
        return Err(ExtractError::Corrupt(format!(
            "the Word document has no {main} part"
        )));
    };
    let folder = main.rsplit_once('/').map_or("", |(folder, _)| folder);

    // Styles only refine heading detection; a broken styles part is not worth refusing the file.
    let styles = match parts.read(&part_path(folder, "styles.xml"))? {
        Some(xml) => xml_text(&xml, "styles.xml")
            .and_then(heading_styles)
            .unwrap_or_default(),
        None => HashSet::new(),
    };
    let body = Body::parse(xml_text(&document, &main)?, &main, &styles)?;
    let mut sections = body.sections;

    for (file, heading) in [("footnotes.xml", "Footnotes"), ("endnotes.xml", "Endnotes")] {
        let path = part_path(folder, file);
        let Some(xml) = parts.read(&path)? else {
            continue;
        };
        let notes = match xml_text(&xml, &path).and_then(|xml| Body::parse(xml, &path, &styles)) {
            Ok(notes) => notes,
            Err(error) => {
                tracing::warn!(part = %path, %error, "skipping unreadable Word notes");
                continue;
            }
        };
        let text: Vec<String> = notes
            .sections
            .into_iter()
            .map(|section| section.text)
            .collect();
        let text = text.join("\n\n");
        if !text.trim().is_empty() {
            sections.push(Section {
                heading: Some(heading.to_string()),
                page: None,
                text,
            });
        }
    }

    let properties_title = match parts.read("docProps/core.xml")? {
        Some(xml) => xml_text(&xml, "docProps/core.xml")
            .ok()
            .and_then(core_title),
        None => None,
    };
    Ok(Extracted {
        title: properties_title.or(body.title),
        sections,
    })
}

/// The archive and what is left of the unpacked-size budget.
struct Parts<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    left: u64,
}

impl Parts<'_> {
    /// The unpacked bytes of a part, `None` when the archive has no such part.
    fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let file = match self.archive.by_name(name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(error) => return Err(archive_error(error)),
        };
        if file.size() > self.left {
            return Err(ExtractError::TooLarge);
        }
        // The declared size may lie; the reader stops one byte past the budget either way.
        let mut data = Vec::new();
        file.take(self.left.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|error| {
                ExtractError::Corrupt(format!("{name} could not be unpacked: {error}"))
            })?;
        let read = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if read > self.left {
            return Err(ExtractError::TooLarge);
        }
        self.left -= read;
        Ok(Some(data))
    }
}

fn archive_error(error: ZipError) -> ExtractError {
    match error {
        ZipError::InvalidPassword => ExtractError::Encrypted,
        ZipError::UnsupportedArchive(reason) if reason == ZipError::PASSWORD_REQUIRED => {
            ExtractError::Encrypted
        }
        other => ExtractError::Corrupt(format!("not a readable .docx archive: {other}")),
    }
}

fn part_path(folder: &str, file: &str) -> String {
    if folder.is_empty() {
        file.to_string()
    } else {
        format!("{folder}/{file}")
    }
}

/// The main document part named by the package relationships, `word/document.xml` by default.
fn main_part(parts: &mut Parts<'_>) -> Result<String, ExtractError> {
    let Some(rels) = parts.read("_rels/.rels")? else {
        return Ok(MAIN_PART.to_string());
    };
    let target = xml_text(&rels, "_rels/.rels")
        .ok()
        .and_then(office_document_target);
    Ok(match target {
        Some(target) if parts.archive.index_for_name(&target).is_some() => target,
        _ => MAIN_PART.to_string(),
    })
}

fn office_document_target(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(element) | Event::Empty(element))
                if local(&element) == "Relationship" =>
            {
                let is_main = attribute(&element, "Type")
                    .is_some_and(|kind| kind.ends_with("/officeDocument"));
                if is_main {
                    let target = attribute(&element, "Target")?;
                    let target = target.trim_start_matches("./").trim_start_matches('/');
                    return Some(target.to_string());
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// The title in the core properties (`dc:title`), if set.
fn core_title(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut title = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(element)) if local(&element) == "title" => inside = true,
            Ok(Event::End(element)) if element.local_name().into_inner() == "title" => {
                inside = false
            }
            Ok(Event::Text(content)) if inside => title.push_str(&content.xml10_content()),
            Ok(Event::GeneralRef(reference)) if inside => {
                if let Some(resolved) = resolve(&reference) {
                    title.push_str(&resolved);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    let title = text::one_line(&title);
    (!title.is_empty()).then_some(title)
}

/// Ids (normalised) of the paragraph styles that are headings: named "heading 1".."heading 9"
/// or "Title", or given an outline level.
fn heading_styles(xml: &str) -> Result<HashSet<String>, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut headings = HashSet::new();
    let mut current: Option<(String, bool)> = None;
    loop {
        match reader
            .read_event()
            .map_err(|error| xml_error("styles.xml", &error))?
        {
            Event::Start(element) => match local(&element) {
                "style" => current = attribute(&element, "styleId").map(|id| (id, false)),
                "name" | "outlineLvl" => mark_heading_style(&mut current, &element),
                _ => {}
            },
            Event::Empty(element) => {
                if matches!(local(&element), "name" | "outlineLvl") {
                    mark_heading_style(&mut current, &element);
                }
            }
            Event::End(element) => {
                if element.local_name().into_inner() == "style"
                    && let Some((id, true)) = current.take()
                {
                    headings.insert(normalize_style(&id));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(headings)
}

fn mark_heading_style(current: &mut Option<(String, bool)>, element: &BytesStart<'_>) {
    let Some((_, heading)) = current.as_mut() else {
        return;
    };
    let Some(value) = attribute(element, "val") else {
        return;
    };
    *heading |= match local(element) {
        "name" => is_heading_name(&normalize_style(&value)),
        _ => is_outline_level(&value),
    };
}

/// Lowercase without spaces, so "Heading 1", "heading1" and "HEADING1" compare equal.
fn normalize_style(style: &str) -> String {
    style
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// True for a normalised "heading1".."heading9" or "title".
fn is_heading_name(normalized: &str) -> bool {
    normalized == "title"
        || normalized.strip_prefix("heading").is_some_and(|level| {
            matches!(level, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9")
        })
}

/// Outline levels 0 to 8 are headings; 9 is body text.
fn is_outline_level(value: &str) -> bool {
    value.trim().parse::<u8>().is_ok_and(|level| level < 9)
}

#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    outline: bool,
}

#[derive(Default)]
struct Table {
    rows: Vec<String>,
    cells: Vec<String>,
    cell: String,
}

/// The state of one pass over a document, footnotes or endnotes part.
struct Body<'s> {
    heading_styles: &'s HashSet<String>,
    sections: Vec<Section>,
    heading: Option<String>,
    text: String,
    /// Open paragraphs: more than one inside text boxes.
    paragraphs: Vec<Paragraph>,
    /// Open tables: more than one when nested.
    tables: Vec<Table>,
    in_text: bool,
    /// Depth inside skipped containers.
    skip: usize,
    /// The first paragraph styled "Title".
    title: Option<String>,
}

impl<'s> Body<'s> {
    fn parse(
        xml: &str,
        part: &str,
        heading_styles: &'s HashSet<String>,
    ) -> Result<Self, ExtractError> {
        let mut body = Body {
            heading_styles,
            sections: Vec::new(),
            heading: None,
            text: String::new(),
            paragraphs: Vec::new(),
            tables: Vec::new(),
            in_text: false,
            skip: 0,
            title: None,
        };
        let mut reader = Reader::from_str(xml);
        loop {
            match reader
                .read_event()
                .map_err(|error| xml_error(part, &error))?
            {
                Event::Start(element) => body.start(&element),
                Event::Empty(element) => body.leaf(&element),
                Event::End(element) => body.end(element.local_name().into_inner()),
                Event::Text(content) => body.push_text(&content.xml10_content()),
                Event::CData(content) => body.push_text(&content.xml10_content()),
                Event::GeneralRef(reference) => {
                    if let Some(resolved) = resolve(&reference) {
                        body.push_text(&resolved);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        body.flush();
        Ok(body)
    }

    fn start(&mut self, element: &BytesStart<'_>) {
        let name = local(element);
        if SKIPPED.contains(&name) {
            self.skip += 1;
            return;
        }
        if self.skip > 0 {
            return;
        }
        match name {
            "p" => self.paragraphs.push(Paragraph::default()),
            "t" => self.in_text = true,
            "tbl" => self.tables.push(Table::default()),
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.cells.clear();
                }
            }
            "tc" => {
                if let Some(table) = self.tables.last_mut() {
                    table.cell.clear();
                }
            }
            _ => self.leaf(element),
        }
    }

    /// Elements that carry a property or a character rather than content.
    fn leaf(&mut self, element: &BytesStart<'_>) {
        if self.skip > 0 {
            return;
        }
        match local(element) {
            "pStyle" => {
                // The first one is the paragraph's own; later ones belong to revision history.
                if let Some(paragraph) = self.paragraphs.last_mut()
                    && paragraph.style.is_none()
                {
                    paragraph.style = attribute(element, "val");
                }
            }
            "outlineLvl" => {
                if let Some(paragraph) = self.paragraphs.last_mut() {
                    paragraph.outline |=
                        attribute(element, "val").is_some_and(|v| is_outline_level(&v));
                }
            }
            "tab" | "ptab" => self.push_char('\t'),
            "br" | "cr" => self.push_char('\n'),
            "noBreakHyphen" => self.push_char('-'),
            "tc" => {
                if let Some(table) = self.tables.last_mut() {
                    table.cells.push(String::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        if SKIPPED.contains(&name) {
            self.skip = self.skip.saturating_sub(1);
            return;
        }
        if self.skip > 0 {
            return;
        }
        match name {
            "t" => self.in_text = false,
            "p" => {
                if let Some(paragraph) = self.paragraphs.pop() {
                    self.finish_paragraph(paragraph);
                }
            }
            "tc" => {
                if let Some(table) = self.tables.last_mut() {
                    let cell = text::one_line(&table.cell);
                    table.cells.push(cell);
                    table.cell.clear();
                }
            }
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    if table.cells.iter().any(|cell| !cell.is_empty()) {
                        let row = table.cells.join(" | ");
                        table.rows.push(row);
                    }
                    table.cells.clear();
                }
            }
            "tbl" => {
                if let Some(table) = self.tables.pop() {
                    // A nested table goes into its cell on one line.
                    let separator = if self.tables.is_empty() { "\n" } else { "; " };
                    let rows = table.rows.join(separator);
                    if !rows.is_empty() {
                        self.push_block(&rows);
                    }
                }
            }
            _ => {}
        }
    }

    /// Run text, kept only inside `w:t` of an open paragraph.
    fn push_text(&mut self, content: &str) {
        if self.in_text
            && self.skip == 0
            && let Some(paragraph) = self.paragraphs.last_mut()
        {
            paragraph.text.push_str(content);
        }
    }

    fn push_char(&mut self, c: char) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push(c);
        }
    }

    fn finish_paragraph(&mut self, paragraph: Paragraph) {
        let text = text::clean_lines(&paragraph.text);
        if text.is_empty() {
            return;
        }
        let top_level = self.paragraphs.is_empty() && self.tables.is_empty();
        let style = paragraph.style.as_deref().map(normalize_style);
        let styled_heading = style
            .as_deref()
            .is_some_and(|style| self.heading_styles.contains(style) || is_heading_name(style));
        if top_level && (styled_heading || paragraph.outline) {
            let heading = text::one_line(&text);
            if self.title.is_none() && style.as_deref() == Some("title") {
                self.title = Some(heading.clone());
            }
            self.flush();
            self.heading = Some(heading);
            return;
        }
        self.push_block(&text);
    }

    /// A finished paragraph or table: into the open table cell, the enclosing paragraph (text
    /// boxes), or the current section.
    fn push_block(&mut self, block: &str) {
        let target = if let Some(table) = self.tables.last_mut() {
            &mut table.cell
        } else if let Some(paragraph) = self.paragraphs.last_mut() {
            &mut paragraph.text
        } else {
            if !self.text.is_empty() {
                self.text.push_str("\n\n");
            }
            self.text.push_str(block);
            return;
        };
        if !target.is_empty() {
            target.push(' ');
        }
        target.push_str(block);
    }

    /// Closes the current section, if it has text.
    fn flush(&mut self) {
        if self.text.trim().is_empty() {
            self.text.clear();
            return;
        }
        let text = std::mem::take(&mut self.text);
        self.sections.push(Section {
            heading: self.heading.take(),
            page: None,
            text,
        });
    }
}

fn local<'e>(element: &'e BytesStart<'_>) -> &'e str {
    element.local_name().into_inner()
}

/// The value of the attribute with this local name, entities resolved.
fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().into_inner() == name)
        .map(|attribute| {
            quick_xml::escape::unescape(&attribute.value)
                .map(|value| value.into_owned())
                .unwrap_or_else(|_| attribute.value.to_string())
        })
}

/// The text of `&amp;`-style and numeric character references.
fn resolve(reference: &BytesRef<'_>) -> Option<String> {
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .ok()
            .flatten()
            .map(String::from);
    }
    quick_xml::escape::resolve_xml_entity(reference).map(str::to_string)
}

/// A part's text: UTF-8, byte order mark removed.
fn xml_text<'b>(bytes: &'b [u8], part: &str) -> Result<&'b str, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map_err(|_| ExtractError::Corrupt(format!("{part} in the Word document is not UTF-8 XML")))
}

fn xml_error(part: &str, error: &quick_xml::Error) -> ExtractError {
    ExtractError::Corrupt(format!(
        "{part} in the Word document is not well-formed XML: {error}"
    ))
}

#[cfg(test)]
mod tests;
