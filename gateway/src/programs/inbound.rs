//! What a contact's message does to programs, before the coach answers it: an opt-out or
//! opt-in keyword (answered with a confirmation, never by the coach), an enrollment keyword or
//! Telegram deep link (`/start <keyword>`), "progress" (the contact's summary), or a reply to a
//! check-in (recorded for analytics; it may choose the next step through a branch, or stop a
//! silence follow-up; an answer to a progress question is recorded as progress). Every action here is idempotent, so the
//! responder may run it again after a crash.

use coach_connector_api::{ChannelKind, Content, OutboundBody};

use super::definition::Definition;
use super::schedule::{due_at, parse_tz, program_day};
use super::{Outreach, keyword_form};
use crate::state::AppState;
use crate::store::programs::{EnrollOutcome, NewEnrollment, ProgramStatus, Route};
use crate::store::{AuditEntry, Conversation, StoreError, StoredMessage};
use crate::tenancy::TenantScope;

/// A branch step due within this many minutes answers the reply itself.
const IMMEDIATE_MINUTES: i64 = 5;

/// What the coach should do with the message afterwards.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Nothing: the message was a command, already answered.
    Handled,
    /// Answer it, with this program context (if the person is in a program) in the prompt.
    Answer(Option<String>),
}

/// Apply a stored inbound message to programs.
pub async fn on_inbound(
    state: &AppState,
    scope: &TenantScope,
    message: &StoredMessage,
    conversation: &Conversation,
) -> Result<Next, StoreError> {
    let Ok(content) = serde_json::from_value::<Content>(message.content.clone()) else {
        return Ok(Next::Answer(None));
    };
    // A voice note counts by what was said in it.
    let said = crate::voice::inbound_text(&message.content);
    let (button, text) = match &content {
        Content::InteractiveReply { id, title } => (Some(id.as_str()), Some(title.as_str())),
        _ => (None, said.as_deref()),
    };
    // Commands are typed: a tapped button titled "Cancel" answers a check-in, it is no opt-out.
    let word = match (&content, text) {
        (Content::InteractiveReply { .. }, _) | (_, None) => String::new(),
        (_, Some(t)) => keyword_form(t),
    };
    let store = state.store.as_ref();
    let (_, profile) = store.tenant_profile(scope).await?;
    let outreach = profile.outreach();
    let now = state.clock.now();
    // The confirmations speak the contact's language (the keyword's, when it is a Spanish one).
    let strings = profile.strings.clone().unwrap_or_default();
    let default_lang = profile
        .persona
        .as_ref()
        .map(|p| p.language.clone())
        .unwrap_or_default();
    let lang = || async {
        let known = store.contact_language(scope, message.contact_id).await?;
        Ok::<_, StoreError>(known.effective(&default_lang).to_string())
    };
    if !word.is_empty()
        && outreach
            .opt_out_keywords
            .iter()
            .any(|k| keyword_form(k) == word)
    {
        let ended = store
            .opt_out(scope, message.contact_id, &format!("keyword:{word}"), now)
            .await?;
        if let Some(ended) = ended {
            audit(state, scope, message, "contact.opt_out", &word, ended).await?;
        }
        let text = outreach.opt_out_confirmation(&word, &strings, &lang().await?);
        confirm(state, scope, message, text).await?;
        return Ok(Next::Handled);
    }
    if !word.is_empty()
        && outreach
            .opt_in_keywords
            .iter()
            .any(|k| keyword_form(k) == word)
        && store.opted_out(scope, message.contact_id).await?.is_some()
    {
        store.opt_in(scope, message.contact_id).await?;
        audit(state, scope, message, "contact.opt_in", &word, 0).await?;
        let text = outreach.opt_in_confirmation(&word, &strings, &lang().await?);
        confirm(state, scope, message, text).await?;
        return Ok(Next::Handled);
    }
    if super::progress::asks_for_progress(&word) {
        let lang = match super::progress::language_of_request(&word) {
            Some(lang) => lang.to_owned(),
            None => lang().await?,
        };
        let summary = super::tracking::summary(state, scope, message, &lang, &strings).await?;
        confirm(state, scope, message, summary).await?;
        return Ok(Next::Handled);
    }
    if let Some(keyword) = enrollment_keyword(&word)
        && enroll_by_keyword(state, scope, message, conversation, &outreach, keyword).await?
    {
        return Ok(Next::Handled);
    }
    let Some(run) = store.last_run(scope, conversation.id).await? else {
        return Ok(Next::Answer(None));
    };
    let program = store
        .program_version(scope, run.enrollment.program_id, run.enrollment.version)
        .await?;
    let tz = parse_tz(&run.enrollment.time_zone).unwrap_or_else(|_| outreach.tz());
    let step = program.step(&run.step_id);
    let reply: String = button
        .or(text)
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    // A step the reply leads to and that is due now answers it.
    let mut answered = false;
    if !run.replied {
        let timed = |target: &super::definition::Step| {
            let when = target.timing.when().ok()?;
            let due = due_at(when, tz, run.enrollment.enrolled_at, now, true);
            // A step due now answers the reply, night or day; a later one keeps to the
            // quiet hours.
            let due = if due <= now + chrono::Duration::minutes(IMMEDIATE_MINUTES) {
                due
            } else {
                outreach.quiet().after(tz, due)
            };
            Some(Route::Goto(target.id.clone(), due))
        };
        let route = match program.branch(&run.step_id, button, text) {
            Some(target) => timed(target).unwrap_or(Route::Stay),
            // A step that waited for the reply: its follow-up gives way to the step after it.
            None if step.is_some_and(|s| s.silence().is_some()) => {
                match program.next_after(&run.step_id) {
                    Some(next) => timed(next).unwrap_or(Route::Stay),
                    None => Route::End,
                }
            }
            None => Route::Stay,
        };
        let immediate = matches!(&route, Route::Goto(_, due)
            if *due <= now + chrono::Duration::minutes(IMMEDIATE_MINUTES));
        let first = store
            .record_reply(scope, run.enrollment.id, run.seq, reply.clone(), now, route)
            .await?;
        answered = first && immediate;
    }
    // An answer to a progress question (within a day of it) is recorded and acknowledged.
    if let Some(question) = step.and_then(|s| s.progress.as_ref())
        && now - run.sent_at < chrono::Duration::hours(super::tracking::ANSWER_HOURS)
        && let Some(value) = question.parse(button, text)
    {
        let lang = lang().await?;
        let recorded = super::tracking::record(
            state,
            scope,
            super::tracking::Answer {
                message,
                run: &run,
                program: &program,
                question,
                value,
                reply,
                tz,
                lang: &lang,
                strings: &strings,
                answered,
            },
        )
        .await?;
        if recorded {
            return Ok(Next::Handled);
        }
    }
    // A step sent in answer is the answer; the coach does not answer as well.
    if answered {
        return Ok(Next::Handled);
    }
    Ok(Next::Answer(Some(context(
        &program,
        &run.step_id,
        program_day(tz, run.enrollment.enrolled_at, now),
    ))))
}

/// The keyword of `/start <keyword>` (Telegram deep links), or the whole message.
fn enrollment_keyword(word: &str) -> Option<&str> {
    let word = word.strip_prefix("start ").unwrap_or(word).trim();
    (!word.is_empty() && !word.contains(char::is_whitespace)).then_some(word)
}

/// Enroll the sender in the active program with this keyword, if there is one; returns whether
/// the message was an enrollment keyword.
async fn enroll_by_keyword(
    state: &AppState,
    scope: &TenantScope,
    message: &StoredMessage,
    conversation: &Conversation,
    outreach: &Outreach,
    keyword: &str,
) -> Result<bool, StoreError> {
    let store = state.store.as_ref();
    let programs = store.programs(scope).await?;
    let Some(program) = programs
        .into_iter()
        .find(|p| p.status == ProgramStatus::Active && p.definition.has_keyword(keyword))
    else {
        return Ok(false);
    };
    let now = state.clock.now();
    let tz = outreach.tz();
    let Some(first) = program.definition.steps.first() else {
        return Ok(false);
    };
    let due = first
        .timing
        .when()
        .map(|w| due_at(w, tz, now, now, false))
        .unwrap_or(now);
    let answers = due <= now + chrono::Duration::minutes(IMMEDIATE_MINUTES);
    let due = if answers {
        due
    } else {
        outreach.quiet().after(tz, due)
    };
    let outcome = store
        .enroll(
            scope,
            vec![NewEnrollment {
                program_id: program.id,
                version: program.version,
                contact_id: conversation.contact_id,
                conversation_id: conversation.id,
                time_zone: outreach.time_zone.clone(),
                variables: serde_json::Map::new(),
                source: format!("keyword:{keyword}"),
                first_step: first.id.clone(),
                due_at: due,
                answers,
            }],
            now,
        )
        .await?;
    match outcome.first() {
        Some(EnrollOutcome::Enrolled(e)) => {
            tracing::info!(enrollment = %e.id, program = %program.id, "enrolled by keyword");
            Ok(true)
        }
        // Already in it: the coach answers as usual.
        Some(EnrollOutcome::Already(_)) | None => Ok(false),
        Some(EnrollOutcome::OptedOut) => {
            let reply = format!(
                "You asked not to get check-ins. Reply {} first to allow them again.",
                outreach
                    .opt_in_keywords
                    .first()
                    .map_or("START".to_owned(), |k| k.to_uppercase())
            );
            confirm(state, scope, message, reply).await?;
            Ok(true)
        }
    }
}

/// What the coach is told about the program when it answers a reply.
fn context(program: &Definition, step_id: &str, day: u32) -> String {
    let mut out = format!("The person is in the coaching program \"{}\"", program.name);
    if !program.goal.trim().is_empty() {
        out.push_str(&format!(" (goal: {})", program.goal.trim()));
    }
    out.push_str(&format!(", day {day}."));
    if let Some(step) = program.step(step_id) {
        out.push_str(&format!(
            " Their message answers the check-in \"{}\".",
            step.message.trim()
        ));
    }
    out
}

async fn confirm(
    state: &AppState,
    scope: &TenantScope,
    message: &StoredMessage,
    text: String,
) -> Result<(), StoreError> {
    state
        .stream
        .send(
            scope,
            message.conversation_id,
            OutboundBody::Text { text },
            Some(message.id),
        )
        .await?;
    Ok(())
}

async fn audit(
    state: &AppState,
    scope: &TenantScope,
    message: &StoredMessage,
    action: &str,
    word: &str,
    ended: u64,
) -> Result<(), StoreError> {
    let channel = state
        .store
        .channel(scope, message.channel_id)
        .await
        .map(|c| c.kind)
        .unwrap_or(ChannelKind::Plugin("unknown".into()));
    state
        .store
        .audit(
            scope,
            AuditEntry {
                actor: format!("contact:{}", message.contact_id),
                action: action.into(),
                resource_type: "contact".into(),
                resource_id: Some(message.contact_id.to_string()),
                ip: None,
                details: serde_json::json!({
                    "keyword": word, "channel": channel.as_str(), "message_id": message.id,
                    "enrollments_ended": ended,
                }),
            },
        )
        .await
}
