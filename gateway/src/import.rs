//! Contacts from a CSV file (`POST /v1/contacts/import`): the header names the columns, each
//! row is checked on its own (a bad row is reported with its line and reason, the others go in),
//! phone numbers become E.164, rows for the same address are merged.
//!
//! Columns (any order, any case): `name`, `phone` (any common notation; without a `+` country
//! code the import's default country applies) or `external_id` (the channel's own id for the
//! person, e.g. a Telegram chat id), `time_zone` (IANA), `language` (BCP 47), `consent`
//! (`yes`/`no`, `true`/`false`, `1`/`0`, or empty for "not stated"); every other column is a
//! custom field.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::contacts::ImportedContact;

/// Rows one import may hold.
pub const MAX_ROWS: usize = 100_000;
/// Bad rows listed in the answer (the count is always complete).
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// A file read: the good rows (merged by address) and the bad ones.
#[derive(Debug, Default)]
pub struct Parsed {
    /// One per address, in first-seen order.
    pub contacts: Vec<ImportedContact>,
    /// Data rows read.
    pub rows: u64,
    /// Good rows folded into an earlier row for the same address.
    pub merged: u64,
    /// Bad rows.
    pub errors: Vec<RowError>,
}

/// How the channel reaches people: by phone number (WhatsApp, SMS) or by its own ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// A phone number, stored as its E.164 digits without `+` (WhatsApp's `wa_id`).
    Phone,
    /// The channel's own id (`external_id`).
    ChannelId,
}

/// Why a whole file is refused (before any row is looked at).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    /// The header lacks a column or repeats one, or the file is not CSV.
    #[error("{0}")]
    Header(String),
    /// More than [`MAX_ROWS`] rows.
    #[error("more than {MAX_ROWS} rows: split the file")]
    TooMany,
}

/// Read `csv` for a channel reached by `addressing`; `country` (ISO 3166 alpha-2) applies to
/// phone numbers written without a country code.
pub fn parse(
    csv: &[u8],
    addressing: Addressing,
    country: Option<phonenumber::country::Id>,
) -> Result<Parsed, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| FileError::Header(format!("the header line: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    let mut seen = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(FileError::Header(format!("column {} has no name", i + 1)));
        }
        if name.chars().count() > 64 {
            return Err(FileError::Header(format!(
                "column {}: names are at most 64 characters",
                i + 1
            )));
        }
        if seen.insert(name.clone(), i).is_some() {
            return Err(FileError::Header(format!(
                "the column {name:?} appears twice"
            )));
        }
    }
    let has = |c: &str| seen.contains_key(c);
    let mut missing: Vec<&str> = ["name", "time_zone"]
        .into_iter()
        .filter(|c| !has(c))
        .collect();
    match addressing {
        Addressing::Phone if !has("phone") && !has("external_id") => missing.push("phone"),
        Addressing::ChannelId if !has("external_id") => missing.push("external_id"),
        _ => {}
    }
    if !missing.is_empty() {
        return Err(FileError::Header(format!(
            "the header lacks {} (found: {})",
            missing.join(", "),
            header.join(", ")
        )));
    }
    let mut parsed = Parsed::default();
    let mut by_address: HashMap<String, usize> = HashMap::new();
    let mut record = csv::StringRecord::new();
    // Lines as an editor numbers them, from the records' byte offsets (blank lines count).
    let mut lines = LineCounter::new(csv);
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                parsed.rows += 1;
                let at = e.position().map_or(start, csv::Position::byte);
                parsed.errors.push(RowError {
                    line: lines.at(at),
                    reason: format!("not valid CSV: {e}"),
                });
                continue;
            }
        }
        if record.iter().all(str::is_empty) {
            continue; // a blank line
        }
        parsed.rows += 1;
        if parsed.rows as usize > MAX_ROWS {
            return Err(FileError::TooMany);
        }
        let line = lines.at(record.position().map_or(start, csv::Position::byte));
        if record.len() != header.len() {
            parsed.errors.push(RowError {
                line,
                reason: format!(
                    "{} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            });
            continue;
        }
        match row(&header, &record, addressing, country) {
            Ok(contact) => match by_address.get(&contact.external_id) {
                Some(&at) => {
                    merge(&mut parsed.contacts[at], contact);
                    parsed.merged += 1;
                }
                None => {
                    by_address.insert(contact.external_id.clone(), parsed.contacts.len());
                    parsed.contacts.push(contact);
                }
            },
            Err(reason) => parsed.errors.push(RowError { line, reason }),
        }
    }
    Ok(parsed)
}

/// Line numbers of byte offsets, counted forward as the file is read.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            byte: 0,
            line: 1,
        }
    }

    /// The line (from 1) holding byte `at`; offsets are asked for in increasing order.
    fn at(&mut self, at: u64) -> u64 {
        let at = usize::try_from(at)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if at > self.byte {
            self.line += self.text[self.byte..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.byte = at;
        }
        self.line
    }
}

/// A later row for the same address fills in and overrides what it states.
fn merge(into: &mut ImportedContact, later: ImportedContact) {
    if later.name.is_some() {
        into.name = later.name;
    }
    if later.time_zone.is_some() {
        into.time_zone = later.time_zone;
    }
    if later.language.is_some() {
        into.language = later.language;
    }
    if later.consent.is_some() {
        into.consent = later.consent;
    }
    into.attributes.extend(later.attributes);
}

/// One data row, checked.
fn row(
    header: &[String],
    record: &csv::StringRecord,
    addressing: Addressing,
    country: Option<phonenumber::country::Id>,
) -> Result<ImportedContact, String> {
    let mut contact = ImportedContact::default();
    let mut phone = None;
    let mut external = None;
    for (name, raw) in header.iter().zip(record.iter()) {
        // Line breaks and tabs inside a quoted cell become single spaces.
        let value = raw
            .split(['\r', '\n', '\t'])
            .filter(|p| !p.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let value = value.as_str();
        if value.is_empty() {
            continue;
        }
        if value.chars().any(char::is_control) {
            return Err(format!("{name}: control characters"));
        }
        match name.as_str() {
            "name" => {
                if value.chars().count() > 200 {
                    return Err("name: at most 200 characters".into());
                }
                contact.name = Some(value.to_owned());
            }
            "phone" => phone = Some(value.to_owned()),
            "external_id" => external = Some(value.to_owned()),
            "time_zone" => {
                let zone: chrono_tz::Tz = value.parse().map_err(|_| {
                    format!("time_zone: {value:?} is not an IANA time zone (e.g. Europe/Madrid)")
                })?;
                contact.time_zone = Some(zone.name().to_owned());
            }
            "language" => contact.language = Some(language(value)?),
            "consent" => {
                contact.consent = Some(match value.to_lowercase().as_str() {
                    "yes" | "y" | "true" | "1" | "si" | "sí" | "sim" => true,
                    "no" | "n" | "false" | "0" | "não" | "nao" => false,
                    _ => return Err(format!("consent: {value:?} is not yes or no")),
                });
            }
            custom => {
                if value.chars().count() > 1_000 {
                    return Err(format!("{custom}: at most 1000 characters"));
                }
                contact.attributes.insert(
                    custom.to_owned(),
                    serde_json::Value::String(value.to_owned()),
                );
            }
        }
    }
    contact.external_id = match (addressing, external.as_deref(), phone.as_deref()) {
        (_, Some(id), _) => {
            if id.chars().count() > 200 {
                return Err("external_id: at most 200 characters".into());
            }
            id.to_owned()
        }
        (Addressing::Phone, None, Some(number)) => e164_digits(number, country)?,
        (Addressing::Phone, None, None) => return Err("no phone number".into()),
        (Addressing::ChannelId, None, _) => {
            return Err(
                "no external_id (this channel does not reach people by phone number)".into(),
            );
        }
    };
    Ok(contact)
}

/// `number` as E.164 digits without the `+` (the form WhatsApp's `wa_id` takes).
fn e164_digits(number: &str, country: Option<phonenumber::country::Id>) -> Result<String, String> {
    let parsed = phonenumber::parse(country, number).map_err(|_| {
        if country.is_none() && !number.starts_with('+') && !number.starts_with("00") {
            format!("phone: {number:?} has no country code (write +CC..., or pass default_country)")
        } else {
            format!("phone: {number:?} is not a phone number")
        }
    })?;
    if !phonenumber::is_valid(&parsed) {
        return Err(format!("phone: {number:?} is not a valid number"));
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    Ok(e164.trim_start_matches('+').to_owned())
}

/// A BCP 47 language tag in its usual case (`pt-BR`), or why it is not one.
fn language(value: &str) -> Result<String, String> {
    let mut parts = value.split(['-', '_']);
    let primary = parts.next().unwrap_or_default();
    let ok_primary =
        (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic());
    let rest: Vec<&str> = parts.collect();
    let ok_rest = rest
        .iter()
        .all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok_primary || !ok_rest {
        return Err(format!(
            "language: {value:?} is not a language tag (e.g. es, pt-BR)"
        ));
    }
    let mut tag = primary.to_lowercase();
    for p in rest {
        tag.push('-');
        tag.push_str(&if p.len() == 2 {
            p.to_uppercase()
        } else {
            p.to_lowercase()
        });
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> Option<phonenumber::country::Id> {
        Some(phonenumber::country::Id::DE)
    }

    #[test]
    fn rows_are_checked_normalized_and_merged() {
        let csv = "\u{feff}Name,Phone,Time_Zone,language,consent,plan\n\
                   Ana,+49 151 1234 5678,Europe/Berlin,ES,yes,gold\n\
                   Bo,0151-12345679,Europe/Berlin,,,\n\
                   \"Ana B.\",0049 1511 2345678,,pt_br,,silver\n\
                   Cy,12,Europe/Berlin,,,\n\
                   Di,+4915112345680,Mars/Olympus,,,\n\
                   Ed,+4915112345681,UTC,,maybe,\n\
                   Fa,+4915112345682\n\
                   \n\
                   \"Gu\nMultiline\",+4915112345683,UTC,,0,\n";
        let parsed = parse(csv.as_bytes(), Addressing::Phone, de()).unwrap();
        assert_eq!(parsed.rows, 8, "blank lines are not rows");
        assert_eq!(parsed.merged, 1);
        let lines: Vec<u64> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![5, 6, 7, 8], "{:?}", parsed.errors);
        assert!(
            parsed.errors[1].reason.contains("IANA"),
            "{:?}",
            parsed.errors
        );
        assert!(parsed.errors[2].reason.contains("consent"));
        assert!(parsed.errors[3].reason.contains("2 fields"));
        let ana = &parsed.contacts[0];
        assert_eq!(ana.external_id, "4915112345678");
        assert_eq!(ana.name.as_deref(), Some("Ana B."), "the later row wins");
        assert_eq!(
            ana.time_zone.as_deref(),
            Some("Europe/Berlin"),
            "an empty cell keeps it"
        );
        assert_eq!(ana.language.as_deref(), Some("pt-BR"));
        assert_eq!(ana.consent, Some(true));
        assert_eq!(ana.attributes["plan"], "silver");
        assert_eq!(
            parsed.contacts[1].external_id, "4915112345679",
            "national notation, default country"
        );
        assert_eq!(parsed.contacts[1].consent, None);
        let gu = parsed.contacts.last().unwrap();
        assert_eq!(
            gu.name.as_deref(),
            Some("Gu Multiline"),
            "a line break in a cell is a space"
        );
        assert_eq!(gu.consent, Some(false));
        assert_eq!(parsed.contacts.len(), 3);
    }

    #[test]
    fn a_file_without_the_needed_columns_is_refused_whole() {
        let err = parse(b"name,email\nAna,a@x\n", Addressing::Phone, None).unwrap_err();
        assert_eq!(
            err,
            FileError::Header("the header lacks time_zone, phone (found: name, email)".into())
        );
        let err = parse(b"name,time_zone,phone\n", Addressing::ChannelId, None).unwrap_err();
        assert!(err.to_string().contains("external_id"), "{err}");
        let err = parse(b"name,name,time_zone,phone\n", Addressing::Phone, None).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn numbers_without_a_country_need_one() {
        let parsed = parse(
            b"name,phone,time_zone\nAna,0151 12345678,UTC\n",
            Addressing::Phone,
            None,
        )
        .unwrap();
        assert!(
            parsed.errors[0].reason.contains("country code"),
            "{:?}",
            parsed.errors
        );
        let parsed = parse(
            b"name,external_id,time_zone\nAna,123456789,UTC\n",
            Addressing::ChannelId,
            None,
        )
        .unwrap();
        assert_eq!(parsed.contacts[0].external_id, "123456789");
    }
}
