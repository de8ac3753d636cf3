//! PDF text, page by page, with pdf-extract (and the lopdf types it re-exports). Its parser
//! panics on some malformed files, so every call into it runs under `catch_unwind`; a page that
//! fails is skipped, and the file is refused only when no page can be read.
//!
//! A small PDF can inflate to gigabytes (a compressed stream of zeros), and the parser inflates
//! object streams while loading. Before it sees the file, every zlib stream in it is inflated
//! once into nothing, against one budget shared with DOCX's ([`MAX_UNPACKED_BYTES`]): a file
//! over it is refused without holding any of it in memory. Files of more than [`MAX_PAGES`]
//! pages are refused too.

use std::io::Read as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::MAX_UNPACKED_BYTES;

use pdf_extract::{Document, Error as PdfError, OutputError, PlainTextOutput};

use super::{ExtractError, Extracted, Section, text};

/// Most pages read from one PDF.
pub const MAX_PAGES: usize = 5_000;

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    if inflated_size(bytes, MAX_UNPACKED_BYTES) > MAX_UNPACKED_BYTES {
        return Err(ExtractError::TooLarge);
    }
    let document = guarded(|| Document::load_mem(bytes))
        .ok_or_else(|| crashed("while opening it"))?
        .map_err(load_error)?;
    // lopdf decrypts files with an empty user password while loading and removes the
    // `Encrypt` entry; one that is still there needs a password.
    if document.trailer.get(b"Encrypt").is_ok() {
        return Err(ExtractError::Encrypted);
    }
    let pages: Vec<u32> = guarded(|| document.get_pages().into_keys().collect())
        .ok_or_else(|| crashed("while listing its pages"))?;
    if pages.is_empty() {
        return Err(ExtractError::Corrupt("the PDF has no pages".to_string()));
    }
    if pages.len() > MAX_PAGES {
        return Err(ExtractError::Corrupt(format!(
            "it has {} pages, more than the {MAX_PAGES} one document may have; split it",
            pages.len()
        )));
    }

    let mut sections = Vec::new();
    let mut failed = 0usize;
    let mut first_failure: Option<String> = None;
    for number in pages.iter().copied() {
        let failure = match guarded(|| page_text(&document, number)) {
            Some(Ok(raw)) => {
                let text = text::clean_flowing(&raw);
                if !text.is_empty() {
                    sections.push(Section {
                        heading: None,
                        page: Some(number),
                        text,
                    });
                }
                continue;
            }
            Some(Err(error)) => {
                tracing::warn!(page = number, %error, "a PDF page could not be read");
                format!("page {number}: {error}")
            }
            None => {
                tracing::warn!(page = number, "the PDF reader crashed on a page");
                format!("the PDF reader crashed on page {number}")
            }
        };
        failed += 1;
        if first_failure.is_none() {
            first_failure = Some(failure);
        }
    }
    if failed == pages.len() {
        return Err(ExtractError::Corrupt(format!(
            "no page could be read; {}",
            first_failure.unwrap_or_default()
        )));
    }
    let title = guarded(|| info_title(&document)).flatten();
    Ok(Extracted { title, sections })
}

/// What the zlib streams of a PDF inflate to together, counted without keeping any of it and
/// stopping once past `budget`. Every `stream` keyword starts a candidate (the data follows its
/// end of line); data that is not zlib adds what it inflated before the error, usually nothing.
fn inflated_size(bytes: &[u8], budget: u64) -> u64 {
    const KEYWORD: &[u8] = b"stream";
    let mut total = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut at = 0;
    while let Some(found) = bytes[at..]
        .windows(KEYWORD.len())
        .position(|w| w == KEYWORD)
    {
        let after = at + found + KEYWORD.len();
        at = after;
        let data = match &bytes[after..] {
            [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] | [b'\r', rest @ ..] => rest,
            _ => continue, // `endstream`, or the word inside some text
        };
        let mut inflater = flate2::read::ZlibDecoder::new(data);
        loop {
            match inflater.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n as u64;
                    if total > budget {
                        return total;
                    }
                }
            }
        }
    }
    total
}

/// Runs `f`, turning a panic into `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

fn crashed(when: &str) -> ExtractError {
    ExtractError::Corrupt(format!("the PDF reader crashed {when}"))
}

fn load_error(error: PdfError) -> ExtractError {
    match error {
        PdfError::Decryption(_)
        | PdfError::InvalidPassword
        | PdfError::UnsupportedSecurityHandler(_)
        | PdfError::AlreadyEncrypted => ExtractError::Encrypted,
        other => ExtractError::Corrupt(format!("not a readable PDF: {other}")),
    }
}

fn page_text(document: &Document, number: u32) -> Result<String, OutputError> {
    let mut text = String::new();
    {
        let mut output = PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(document, &mut output, number)?;
    }
    Ok(text)
}

/// The `Title` of the document information dictionary, if set.
fn info_title(document: &Document) -> Option<String> {
    let info = document.trailer.get(b"Info").ok()?;
    let (_, info) = document.dereference(info).ok()?;
    let title = info.as_dict().ok()?.get(b"Title").ok()?;
    let (_, title) = document.dereference(title).ok()?;
    let title = text::one_line(&pdf_extract::decode_text_string(title).ok()?);
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use pdf_extract::content::{Content, Operation};
    use pdf_extract::{
        Dictionary, EncryptionState, EncryptionVersion, Object, Permissions, Stream,
    };

    use super::*;
    use crate::extract::{DocumentKind, extract as extract_document};

    fn dictionary(entries: Vec<(&str, Object)>) -> Dictionary {
        let mut dictionary = Dictionary::new();
        for (key, value) in entries {
            dictionary.set(key, value);
        }
        dictionary
    }

    /// A PDF with one page per entry of `pages`, each line written in Courier (a standard font,
    /// so no font file is needed), as in lopdf's README.
    fn build(pages: &[&[&str]], title: Option<&str>) -> Document {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let font_id = document.add_object(dictionary(vec![
            ("Type", "Font".into()),
            ("Subtype", "Type1".into()),
            ("BaseFont", "Courier".into()),
        ]));
        let resources_id = document.add_object(dictionary(vec![(
            "Font",
            Object::Dictionary(dictionary(vec![("F1", font_id.into())])),
        )]));
        let mut kids = Vec::new();
        for lines in pages {
            let mut operations = vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 720.into()]),
            ];
            for (index, line) in lines.iter().enumerate() {
                if index > 0 {
                    operations.push(Operation::new("Td", vec![0.into(), (-14).into()]));
                }
                operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
            }
            operations.push(Operation::new("ET", vec![]));
            let content = Content { operations };
            let content_id =
                document.add_object(Stream::new(Dictionary::new(), content.encode().unwrap()));
            let page_id = document.add_object(dictionary(vec![
                ("Type", "Page".into()),
                ("Parent", pages_id.into()),
                ("Contents", content_id.into()),
            ]));
            kids.push(Object::from(page_id));
        }
        let count = i64::try_from(kids.len()).unwrap();
        let pages_dictionary = dictionary(vec![
            ("Type", "Pages".into()),
            ("Kids", kids.into()),
            ("Count", count.into()),
            ("Resources", resources_id.into()),
            (
                "MediaBox",
                Object::Array(vec![0.into(), 0.into(), 595.into(), 842.into()]),
            ),
        ]);
        document
            .objects
            .insert(pages_id, Object::Dictionary(pages_dictionary));
        let catalog_id = document.add_object(dictionary(vec![
            ("Type", "Catalog".into()),
            ("Pages", pages_id.into()),
        ]));
        document.trailer.set("Root", catalog_id);
        if let Some(title) = title {
            let info_id =
                document.add_object(dictionary(vec![("Title", Object::string_literal(title))]));
            document.trailer.set("Info", info_id);
        }
        document
    }

    fn save(mut document: Document) -> Vec<u8> {
        let mut bytes = Vec::new();
        document.save_to(&mut bytes).unwrap();
        bytes
    }

    fn encrypted(owner_password: &str, user_password: &str) -> Vec<u8> {
        let page: &[&str] = &["Private notes."];
        let mut document = build(&[page], None);
        let id = Object::string_literal("0123456789abcdef");
        document
            .trailer
            .set("ID", Object::Array(vec![id.clone(), id]));
        let state = EncryptionState::try_from(EncryptionVersion::V2 {
            document: &document,
            owner_password,
            user_password,
            key_length: 128,
            permissions: Permissions::all(),
        })
        .unwrap();
        document.encrypt(&state).unwrap();
        save(document)
    }

    fn words(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn text_comes_back_with_page_numbers() {
        let first: &[&str] = &["Hello from page one.", "Second line."];
        let second: &[&str] = &["Page two talks about sleep."];
        let bytes = save(build(&[first, second], Some("Habit Guide")));
        assert_eq!(
            DocumentKind::detect(Some("guide.pdf"), None, &bytes).unwrap(),
            DocumentKind::Pdf
        );
        let extracted = extract_document(&bytes, DocumentKind::Pdf).unwrap();
        assert_eq!(extracted.title.as_deref(), Some("Habit Guide"));
        assert_eq!(extracted.sections.len(), 2, "{extracted:?}");
        assert_eq!(extracted.sections[0].page, Some(1));
        assert_eq!(extracted.sections[0].heading, None);
        assert_eq!(
            words(&extracted.sections[0].text),
            "Hello from page one. Second line."
        );
        assert_eq!(extracted.sections[1].page, Some(2));
        assert_eq!(
            words(&extracted.sections[1].text),
            "Page two talks about sleep."
        );
    }

    /// Resident memory of this process in bytes.
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn a_pdf_that_inflates_past_the_budget_is_refused_without_inflating_it() {
        use std::io::Write as _;
        // 256 MiB of spaces (valid page content) compress to about 250 KiB.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![b' '; 1024 * 1024];
        for _ in 0..256 {
            zlib.write_all(&block).unwrap();
        }
        let bomb = zlib.finish().unwrap();
        let page: &[&str] = &["A page before the bomb."];
        let mut document = build(&[page], None);
        let stream = Stream::new(dictionary(vec![("Filter", "FlateDecode".into())]), bomb);
        let bomb_id = document.add_object(stream);
        let first = document.get_pages()[&1];
        document
            .get_dictionary_mut(first)
            .unwrap()
            .set("Contents", Object::Array(vec![bomb_id.into()]));
        let bytes = save(document);
        assert!(bytes.len() < 2 * 1024 * 1024, "{} bytes", bytes.len());
        let before = rss();
        let refused = extract_document(&bytes, DocumentKind::Pdf);
        let grown = rss().saturating_sub(before);
        assert!(
            matches!(refused, Err(ExtractError::TooLarge)),
            "{refused:?}"
        );
        assert!(
            refused.unwrap_err().to_string().contains("64 MiB"),
            "the error says what the limit is"
        );
        assert!(
            grown < 100 * 1024 * 1024,
            "resident memory grew {grown} bytes"
        );
        // Under the budget, the same kind of stream is read.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(b"BT /F1 12 Tf 72 720 Td (Inflated but small.) Tj ET")
            .unwrap();
        let small = zlib.finish().unwrap();
        let mut document = build(&[page], None);
        let id = document.add_object(Stream::new(
            dictionary(vec![("Filter", "FlateDecode".into())]),
            small,
        ));
        let first = document.get_pages()[&1];
        document
            .get_dictionary_mut(first)
            .unwrap()
            .set("Contents", Object::Array(vec![id.into()]));
        let extracted = extract_document(&save(document), DocumentKind::Pdf).unwrap();
        assert_eq!(words(&extracted.sections[0].text), "Inflated but small.");
    }

    #[test]
    fn a_page_without_text_is_empty() {
        let blank: &[&str] = &[];
        let bytes = save(build(&[blank], None));
        assert!(matches!(
            extract_document(&bytes, DocumentKind::Pdf),
            Err(ExtractError::Empty)
        ));
    }

    #[test]
    fn a_user_password_is_refused_clearly() {
        let error = extract(&encrypted("owner", "secret")).unwrap_err();
        assert!(matches!(error, ExtractError::Encrypted), "{error:?}");
        assert!(error.to_string().contains("password"));
    }

    #[test]
    fn an_owner_password_alone_does_not_stop_reading() {
        let extracted = extract(&encrypted("owner", "")).unwrap();
        assert_eq!(words(&extracted.sections[0].text), "Private notes.");
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            extract(b"%PDF-1.4 garbage"),
            Err(ExtractError::Corrupt(_))
        ));
        let page: &[&str] = &["Some text."];
        let mut truncated = save(build(&[page], None));
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            extract(&truncated),
            Err(ExtractError::Corrupt(_) | ExtractError::Empty)
        ));
    }
}
