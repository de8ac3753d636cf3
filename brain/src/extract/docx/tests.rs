#![allow(clippy::unwrap_used)]
use std::io::Write;

use zip::write::SimpleFileOptions;

use super::*;
use crate::extract::{DocumentKind, extract as extract_document};

const TRANSITIONAL: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const STRICT: &str = "http://purl.oclc.org/ooxml/wordprocessingml/main";

const BODY: &str = r#"
    <w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Sleep Plan</w:t></w:r></w:p>
    <w:p><w:r><w:t>Intro text.</w:t></w:r></w:p>
    <w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Getting started</w:t></w:r></w:p>
    <w:p><w:r><w:t xml:space="preserve">Walk </w:t></w:r><w:r><w:t>daily &amp; rest</w:t></w:r><w:r><w:tab/><w:t>well.</w:t></w:r></w:p>
    <w:tbl>
      <w:tr><w:tc><w:p><w:r><w:t>Top left</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Top right</w:t></w:r></w:p></w:tc></w:tr>
      <w:tr><w:tc><w:p><w:r><w:t>Bottom left</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Bottom right</w:t></w:r></w:p></w:tc></w:tr>
    </w:tbl>
    <w:p><w:r><w:delText>deleted words</w:delText></w:r><w:del><w:r><w:t>also deleted</w:t></w:r></w:del><w:r><w:t>Below</w:t></w:r></w:p>
    <w:sectPr/>"#;

fn document_xml(namespace: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{namespace}"><w:body>{body}</w:body></w:document>"#
    )
}

fn archive(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn expected_sections() -> Vec<Section> {
    vec![
        Section { heading: Some("Sleep Plan".to_string()), page: None, text: "Intro text.".to_string() },
        Section {
            heading: Some("Getting started".to_string()),
            page: None,
            text: "Walk daily & rest well.\n\nTop left | Top right\nBottom left | Bottom right\n\nBelow"
                .to_string(),
        },
    ]
}

#[test]
fn headings_paragraphs_and_tables() {
    let bytes = archive(&[(
        "word/document.xml",
        document_xml(TRANSITIONAL, BODY).as_str(),
    )]);
    assert_eq!(
        DocumentKind::detect(Some("plan.docx"), None, &bytes).unwrap(),
        DocumentKind::Docx
    );
    let extracted = extract_document(&bytes, DocumentKind::Docx).unwrap();
    assert_eq!(extracted.title.as_deref(), Some("Sleep Plan"));
    assert_eq!(extracted.sections, expected_sections());
}

#[test]
fn strict_namespace_reads_the_same() {
    let rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let bytes = archive(&[
        ("_rels/.rels", rels),
        ("word/document.xml", document_xml(STRICT, BODY).as_str()),
    ]);
    let extracted = extract_document(&bytes, DocumentKind::Docx).unwrap();
    assert_eq!(extracted.sections, expected_sections());
}

#[test]
fn core_title_footnotes_and_bom() {
    let core = r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Habits &amp; Sleep</dc:title></cp:coreProperties>"#;
    let footnotes = format!(
        r#"<?xml version="1.0"?><w:footnotes xmlns:w="{TRANSITIONAL}"><w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote><w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t xml:space="preserve"> A tachyon walks into a bar.</w:t></w:r></w:p></w:footnote></w:footnotes>"#
    );
    let document = format!(
        "\u{feff}{}",
        document_xml(
            TRANSITIONAL,
            "<w:p><w:r><w:t>Ouch</w:t></w:r><w:r><w:footnoteReference w:id=\"1\"/></w:r><w:r><w:t>.</w:t></w:r></w:p>"
        )
    );
    let bytes = archive(&[
        ("word/document.xml", document.as_str()),
        ("word/footnotes.xml", footnotes.as_str()),
        ("docProps/core.xml", core),
    ]);
    let extracted = extract_document(&bytes, DocumentKind::Docx).unwrap();
    assert_eq!(extracted.title.as_deref(), Some("Habits & Sleep"));
    assert_eq!(
        extracted.sections,
        vec![
            Section {
                heading: None,
                page: None,
                text: "Ouch.".to_string()
            },
            Section {
                heading: Some("Footnotes".to_string()),
                page: None,
                text: "A tachyon walks into a bar.".to_string()
            },
        ]
    );
}

#[test]
fn localized_heading_styles_come_from_styles_xml() {
    let styles = format!(
        r#"<w:styles xmlns:w="{TRANSITIONAL}"><w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style><w:style w:type="paragraph" w:styleId="Standard"><w:name w:val="Normal"/></w:style></w:styles>"#
    );
    let body = r#"<w:p><w:pPr><w:pStyle w:val="berschrift1"/></w:pPr><w:r><w:t>Einleitung</w:t></w:r></w:p><w:p><w:pPr><w:pStyle w:val="Standard"/></w:pPr><w:r><w:t>Text.</w:t></w:r></w:p>"#;
    let bytes = archive(&[
        (
            "word/document.xml",
            document_xml(TRANSITIONAL, body).as_str(),
        ),
        ("word/styles.xml", styles.as_str()),
    ]);
    let extracted = extract_document(&bytes, DocumentKind::Docx).unwrap();
    assert_eq!(extracted.sections[0].heading.as_deref(), Some("Einleitung"));
    assert_eq!(extracted.sections[0].text, "Text.");
}

#[test]
fn an_empty_body_is_empty() {
    let bytes = archive(&[(
        "word/document.xml",
        document_xml(TRANSITIONAL, "<w:p/><w:sectPr/>").as_str(),
    )]);
    assert!(matches!(
        extract_document(&bytes, DocumentKind::Docx),
        Err(ExtractError::Empty)
    ));
}

#[test]
fn unpacking_beyond_the_budget_is_too_large() {
    let long = format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", "word ".repeat(1_000));
    let bytes = archive(&[(
        "word/document.xml",
        document_xml(TRANSITIONAL, &long).as_str(),
    )]);
    assert!(matches!(
        extract_within(&bytes, 1_000),
        Err(ExtractError::TooLarge)
    ));
    assert!(extract_within(&bytes, 100_000).is_ok());
}

#[test]
fn broken_archives_and_xml_are_corrupt() {
    let mut bytes = b"PK\x03\x04".to_vec();
    bytes.extend_from_slice(&[7; 64]);
    assert!(matches!(
        DocumentKind::detect(None, None, &bytes),
        Err(ExtractError::Corrupt(_))
    ));
    let bytes = archive(&[("word/document.xml", "<w:document><w:body><w:p></w:body>")]);
    assert!(matches!(
        extract_document(&bytes, DocumentKind::Docx),
        Err(ExtractError::Corrupt(_))
    ));
}

#[test]
fn other_zip_archives_are_unsupported() {
    let bytes = archive(&[("xl/workbook.xml", "<workbook/>")]);
    assert!(matches!(
        DocumentKind::detect(Some("sheet.xlsx"), None, &bytes),
        Err(ExtractError::Unsupported(_))
    ));
}
