//! Document extraction: PDF, Word (.docx), Markdown, HTML and plain text become sections of
//! clean text, each with the heading above it and (for PDF) its page, ready for chunking.
//!
//! Extraction is synchronous and CPU-bound; callers run it in `spawn_blocking`.

mod docx;
mod html;
mod markdown;
mod pdf;
mod text;

/// The most bytes a Word document may unpack to (all parts read together): a zip bomb guard.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// The formats the brain reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// A PDF with a text layer.
    Pdf,
    /// A Word document in Office Open XML (transitional or strict).
    Docx,
    /// Markdown (CommonMark ATX headings start sections).
    Markdown,
    /// An HTML page.
    Html,
    /// Plain UTF-8 text.
    Text,
}

/// The text of a document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The document's own title (PDF info, DOCX properties, HTML `<title>`, first `#` heading).
    pub title: Option<String>,
    /// Sections in reading order; none is empty.
    pub sections: Vec<Section>,
}

/// A run of text under one heading (and on one page, for PDF).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// The nearest heading above the text.
    pub heading: Option<String>,
    /// The 1-based page the text is on (PDF only).
    pub page: Option<u32>,
    /// The text; paragraphs are separated by one blank line.
    pub text: String,
}

/// Why a document could not be read; every message is meant for the person who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file is not one of the supported formats (the detail says what it is).
    #[error(
        "unsupported file: {0}. Upload a PDF, a Word document (.docx), Markdown, HTML or plain UTF-8 text"
    )]
    Unsupported(String),
    /// The document is password-protected.
    #[error(
        "the document is password-protected; remove the password (for example by printing it to a new PDF) and upload it again"
    )]
    Encrypted,
    /// The file is damaged or not what its name says (the detail says what failed).
    #[error(
        "the file could not be read and may be damaged ({0}); export or save it again and re-upload it"
    )]
    Corrupt(String),
    /// The document unpacks to more than [`MAX_UNPACKED_BYTES`].
    #[error("the document unpacks to more than 64 MiB; split it into smaller files")]
    TooLarge,
    /// No text was found.
    #[error("the document has no extractable text; scanned PDFs need OCR first")]
    Empty,
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// Compound File Binary: legacy Office files, and password-protected Office Open XML files.
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
const DOCX_MIME: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

impl DocumentKind {
    /// Works out the format from the bytes first (PDF header, ZIP holding a Word document), then
    /// from the file extension or content type; anything else must be UTF-8 text.
    pub fn detect(
        filename: Option<&str>,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Self, ExtractError> {
        let extension = filename
            .and_then(|name| name.rsplit_once('.'))
            .map(|(_, extension)| extension.trim().to_ascii_lowercase());
        let mime = content_type
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase());
        let extension = extension.as_deref();
        let mime = mime.as_deref();
        let named_docx = extension == Some("docx") || mime == Some(DOCX_MIME);

        if is_pdf(bytes) {
            return Ok(Self::Pdf);
        }
        if bytes.starts_with(ZIP_MAGIC) {
            return if docx::is_docx(bytes)? {
                Ok(Self::Docx)
            } else {
                Err(ExtractError::Unsupported(
                    "the file is a ZIP archive but not a Word document (spreadsheets, presentations and other archives are not read)"
                        .to_string(),
                ))
            };
        }
        if bytes.starts_with(OLE_MAGIC) {
            // Word stores password-protected .docx files in this container.
            if named_docx {
                return Err(ExtractError::Encrypted);
            }
            return Err(ExtractError::Unsupported(
                "the file is a legacy Microsoft Office document (.doc, .xls or .ppt); save it as .docx or PDF first"
                    .to_string(),
            ));
        }
        if extension == Some("pdf") || mime == Some("application/pdf") {
            return Err(ExtractError::Corrupt(
                "it is named as a PDF but does not contain PDF data".to_string(),
            ));
        }
        if named_docx {
            return Err(ExtractError::Corrupt(
                "it is named as a Word document but is not a .docx archive".to_string(),
            ));
        }
        if let Some(image) = image_kind(bytes) {
            return Err(ExtractError::Unsupported(format!(
                "the file is an image ({image}); text in images needs OCR first"
            )));
        }
        let text = decode_text(bytes)?;
        if let Some(kind) = extension.and_then(Self::from_extension) {
            return Ok(kind);
        }
        if let Some(kind) = mime.and_then(Self::from_mime) {
            return Ok(kind);
        }
        Ok(if looks_like_html(text) {
            Self::Html
        } else {
            Self::Text
        })
    }

    /// A short lowercase name ("pdf", "docx", "markdown", "html", "text") for storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Text => "text",
        }
    }

    fn from_extension(extension: &str) -> Option<Self> {
        match extension {
            "md" | "markdown" | "mdown" | "mkd" | "mkdn" => Some(Self::Markdown),
            "html" | "htm" | "xhtml" => Some(Self::Html),
            "txt" | "text" => Some(Self::Text),
            _ => None,
        }
    }

    fn from_mime(mime: &str) -> Option<Self> {
        match mime {
            "text/markdown" | "text/x-markdown" => Some(Self::Markdown),
            "text/html" | "application/xhtml+xml" => Some(Self::Html),
            "text/plain" => Some(Self::Text),
            _ => None,
        }
    }
}

/// Extracts the sections of a document of a known kind (see [`DocumentKind::detect`]).
pub fn extract(bytes: &[u8], kind: DocumentKind) -> Result<Extracted, ExtractError> {
    let extracted = match kind {
        DocumentKind::Pdf => pdf::extract(bytes)?,
        DocumentKind::Docx => docx::extract(bytes)?,
        DocumentKind::Markdown => markdown::extract(decode_text(bytes)?),
        DocumentKind::Html => html::extract(decode_text(bytes)?),
        DocumentKind::Text => Extracted {
            title: None,
            sections: vec![Section {
                heading: None,
                page: None,
                text: text::clean_block(decode_text(bytes)?),
            }],
        },
    };
    finish(extracted)
}

/// Drops empty sections, tidies headings and title, and refuses a document without text.
fn finish(extracted: Extracted) -> Result<Extracted, ExtractError> {
    let sections: Vec<Section> = extracted
        .sections
        .into_iter()
        .filter(|section| !section.text.trim().is_empty())
        .map(|section| Section {
            heading: section
                .heading
                .map(|heading| text::one_line(&heading))
                .filter(|h| !h.is_empty()),
            ..section
        })
        .collect();
    if sections.is_empty() {
        return Err(ExtractError::Empty);
    }
    let title = extracted
        .title
        .map(|title| text::one_line(&title))
        .filter(|t| !t.is_empty());
    Ok(Extracted { title, sections })
}

/// PDF readers accept the header anywhere in the first kilobyte.
fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    head.windows(5).any(|window| window == b"%PDF-")
}

fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG") {
        Some("PNG")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("JPEG")
    } else if bytes.starts_with(b"GIF8") {
        Some("GIF")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP".as_slice()) {
        Some("WebP")
    } else if bytes.starts_with(b"II*\x00") || bytes.starts_with(b"MM\x00*") {
        Some("TIFF")
    } else {
        None
    }
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start()
        .chars()
        .take(256)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<head")
}

/// The text of a text file: UTF-8 without its byte order mark, and no binary data.
fn decode_text(bytes: &[u8]) -> Result<&str, ExtractError> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(ExtractError::Unsupported(
            "the text is UTF-16 encoded; save it as UTF-8".to_string(),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| {
        ExtractError::Unsupported(
            "the file is neither a PDF, a Word document nor UTF-8 text".to_string(),
        )
    })?;
    if text.contains('\0') {
        return Err(ExtractError::Unsupported(
            "the file contains binary data, not text".to_string(),
        ));
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn detect(
        name: Option<&str>,
        mime: Option<&str>,
        bytes: &[u8],
    ) -> Result<DocumentKind, ExtractError> {
        DocumentKind::detect(name, mime, bytes)
    }

    #[test]
    fn magic_bytes_win_over_names() {
        assert_eq!(
            detect(Some("notes.txt"), None, b"%PDF-1.7\n...").unwrap(),
            DocumentKind::Pdf
        );
        assert_eq!(
            detect(None, None, b"\n\n%PDF-1.4 junk").unwrap(),
            DocumentKind::Pdf
        );
    }

    #[test]
    fn text_kinds_come_from_extension_then_content_type_then_sniffing() {
        assert_eq!(
            detect(Some("README.md"), None, b"# Hi").unwrap(),
            DocumentKind::Markdown
        );
        assert_eq!(
            detect(Some("page.HTM"), None, b"<p>x</p>").unwrap(),
            DocumentKind::Html
        );
        assert_eq!(
            detect(None, Some("text/html; charset=utf-8"), b"<p>x</p>").unwrap(),
            DocumentKind::Html
        );
        assert_eq!(
            detect(None, Some("text/markdown"), b"# x").unwrap(),
            DocumentKind::Markdown
        );
        assert_eq!(
            detect(None, None, b"  <!DOCTYPE html><html></html>").unwrap(),
            DocumentKind::Html
        );
        assert_eq!(
            detect(Some("notes"), None, b"plain words").unwrap(),
            DocumentKind::Text
        );
        assert_eq!(
            detect(None, None, b"\xEF\xBB\xBFwith a BOM").unwrap(),
            DocumentKind::Text
        );
    }

    #[test]
    fn random_bytes_are_unsupported() {
        let bytes = [0x13, 0xff, 0x00, 0x81, 0xfe, 0x42, 0x99, 0xc3, 0x28, 0x00];
        assert!(matches!(
            detect(None, None, &bytes),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            detect(Some("a.bin"), None, b"ab\0cd"),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            detect(Some("x.png"), None, b"\x89PNG\r\n\x1a\n...."),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            detect(Some("old.doc"), None, OLE_MAGIC),
            Err(ExtractError::Unsupported(_))
        ));
    }

    #[test]
    fn misnamed_files_are_reported_as_damaged() {
        assert!(matches!(
            detect(Some("report.pdf"), None, b"hello"),
            Err(ExtractError::Corrupt(_))
        ));
        assert!(matches!(
            detect(Some("report.docx"), None, b"hello"),
            Err(ExtractError::Corrupt(_))
        ));
        assert!(matches!(
            detect(Some("secret.docx"), None, OLE_MAGIC),
            Err(ExtractError::Encrypted)
        ));
    }

    #[test]
    fn plain_text_is_one_section_without_the_bom() {
        let extracted = extract(
            b"\xEF\xBB\xBFFirst line\r\nsecond line  \r\n\r\n\r\n\r\nLast",
            DocumentKind::Text,
        )
        .unwrap();
        assert_eq!(extracted.title, None);
        assert_eq!(
            extracted.sections,
            vec![Section {
                heading: None,
                page: None,
                text: "First line\nsecond line\n\nLast".to_string()
            }]
        );
    }

    #[test]
    fn whitespace_only_documents_are_empty() {
        assert!(matches!(
            extract(b" \n\t\n ", DocumentKind::Text),
            Err(ExtractError::Empty)
        ));
        assert!(matches!(
            extract(b"", DocumentKind::Markdown),
            Err(ExtractError::Empty)
        ));
        assert!(matches!(
            extract(
                b"<html><script>var a = 1;</script></html>",
                DocumentKind::Html
            ),
            Err(ExtractError::Empty)
        ));
        let message = ExtractError::Empty.to_string();
        assert!(message.contains("OCR"), "{message}");
    }

    #[test]
    fn corrupt_pdfs_are_reported_as_damaged() {
        assert_eq!(
            detect(None, None, b"%PDF-1.4 garbage").unwrap(),
            DocumentKind::Pdf
        );
        assert!(matches!(
            extract(b"%PDF-1.4 garbage", DocumentKind::Pdf),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
