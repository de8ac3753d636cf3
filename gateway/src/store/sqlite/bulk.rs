//! Set-based ingest for the SQLite writer: every message of every ingest request in one writer
//! batch is deduplicated, attached to its contact and conversation, and stored with its jobs in
//! a fixed number of statements (rows travel as one JSON array per statement), instead of
//! several round trips per message. Requests carrying statuses or unknown events, and any batch
//! that fails, take the per-request path (`channels/sql.rs`'s `ingest` in a savepoint each), so the outcome
//! is the same either way; only the number of round trips differs.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use coach_connector_api::{
    ChannelId, ContactId, ConversationId, InboundEvent, InboundMessage, MessageId, TenantId,
};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::store::notices::CONVERSATION_WOKEN;
use crate::store::types::jobs_for;
use crate::store::{Direction, IngestReport, StoreError, StoredEvent, StoredMessage};

/// One `Store::ingest` call waiting in the writer queue.
pub(super) struct IngestRequest {
    pub tenant: TenantId,
    pub channel: ChannelId,
    pub events: Vec<InboundEvent>,
    pub now: DateTime<Utc>,
    pub reply: oneshot::Sender<Result<IngestReport, StoreError>>,
}

impl IngestRequest {
    /// Whether the set-based path can take this request (messages only).
    pub(super) fn bulk_ready(&self) -> bool {
        self.events
            .iter()
            .all(|e| matches!(e, InboundEvent::Message(_)))
    }
}

fn hex(id: Uuid) -> String {
    id.simple().to_string()
}

fn uuid_col(row: &sqlx::sqlite::SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// Run a statement over `rows`, passed as one JSON array in `$1`, with `now` in `$2`. Every
/// statement names `$2` (if only in `WHERE $2 IS NOT NULL`) so both arguments always bind.
async fn rows_stmt(
    conn: &mut SqliteConnection,
    sql: &'static str,
    rows: &[Value],
    now: DateTime<Utc>,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let payload = Value::Array(rows.to_vec()).to_string();
    Ok(sqlx::query(sql)
        .bind(payload)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?)
}

/// Ingest every request in one go. Returns one result per request, in order: `NotFound` for a
/// request whose channel is not its tenant's, a report otherwise. An `Err` means nothing is
/// usable and the caller must roll back and take the per-request path.
pub(super) async fn ingest(
    conn: &mut SqliteConnection,
    requests: &[IngestRequest],
) -> Result<Vec<Result<IngestReport, StoreError>>, StoreError> {
    let now = requests
        .iter()
        .map(|r| r.now)
        .max()
        .unwrap_or_else(Utc::now);

    // 1. Which (tenant, channel) pairs are real.
    let pairs: HashSet<(TenantId, ChannelId)> =
        requests.iter().map(|r| (r.tenant, r.channel)).collect();
    let probe: Vec<Value> = pairs
        .iter()
        .map(|(t, c)| json!({ "t": hex(t.0), "c": hex(c.0) }))
        .collect();
    let valid: HashSet<(Uuid, Uuid)> = rows_stmt(
        conn,
        "SELECT lower(hex(k.tenant_id)) AS t, lower(hex(k.id)) AS c FROM json_each($1) j \
         JOIN channels k ON k.id = unhex(j.value ->> 'c') AND k.tenant_id = unhex(j.value ->> 't') \
         WHERE $2 IS NOT NULL",
        &probe,
        now,
    )
    .await?
    .iter()
    .map(|row| Ok((uuid_col(row, "t")?, uuid_col(row, "c")?)))
    .collect::<Result<_, StoreError>>()?;
    let ok = |r: &IngestRequest| valid.contains(&(r.tenant.0, r.channel.0));

    // 2. Messages not seen before (in the database or earlier in this batch).
    let mut messages: Vec<(usize, &InboundMessage)> = Vec::new();
    for (i, r) in requests.iter().enumerate().filter(|(_, r)| ok(r)) {
        for e in &r.events {
            if let InboundEvent::Message(m) = e {
                messages.push((i, m));
            }
        }
    }
    let keys: Vec<Value> = messages
        .iter()
        .map(|(i, m)| {
            let r = &requests[*i];
            json!({ "t": hex(r.tenant.0), "c": hex(r.channel.0), "k": m.dedup_key.0 })
        })
        .collect();
    let existing: HashSet<(Uuid, Uuid, String)> = rows_stmt(
        conn,
        "SELECT lower(hex(m.tenant_id)) AS t, lower(hex(m.channel_id)) AS c, m.dedup_key AS k \
         FROM json_each($1) j JOIN messages m ON m.tenant_id = unhex(j.value ->> 't') \
         AND m.channel_id = unhex(j.value ->> 'c') AND m.dedup_key = j.value ->> 'k' WHERE $2 IS NOT NULL",
        &keys,
        now,
    )
    .await?
    .iter()
    .map(|row| Ok((uuid_col(row, "t")?, uuid_col(row, "c")?, row.try_get("k")?)))
    .collect::<Result<_, StoreError>>()?;
    let mut seen = HashSet::new();
    let fresh: Vec<(usize, &InboundMessage)> = messages
        .into_iter()
        .filter(|(i, m)| {
            let key = (
                requests[*i].tenant.0,
                requests[*i].channel.0,
                m.dedup_key.0.clone(),
            );
            !existing.contains(&key) && seen.insert(key)
        })
        .collect();

    // 3. Contacts: known identities, then new ones.
    type Who = (Uuid, Uuid, String);
    let who = |i: usize, m: &InboundMessage| -> Who {
        (
            requests[i].tenant.0,
            requests[i].channel.0,
            m.from.id.clone(),
        )
    };
    let distinct: HashMap<Who, &InboundMessage> =
        fresh.iter().map(|(i, m)| (who(*i, m), *m)).collect();
    let probe: Vec<Value> = distinct
        .keys()
        .map(|(t, c, x)| json!({ "t": hex(*t), "c": hex(*c), "x": x }))
        .collect();
    let mut contacts: HashMap<Who, Uuid> = HashMap::new();
    for row in rows_stmt(
        conn,
        "SELECT lower(hex(ci.tenant_id)) AS t, lower(hex(ci.channel_id)) AS c, ci.external_id AS x, \
         lower(hex(ci.contact_id)) AS contact FROM json_each($1) j JOIN contact_identities ci \
         ON ci.tenant_id = unhex(j.value ->> 't') AND ci.channel_id = unhex(j.value ->> 'c') \
         AND ci.external_id = j.value ->> 'x' WHERE $2 IS NOT NULL",
        &probe,
        now,
    )
    .await?
    {
        contacts.insert((uuid_col(&row, "t")?, uuid_col(&row, "c")?, row.try_get("x")?), uuid_col(&row, "contact")?);
    }
    let mut new_contacts = Vec::new();
    for (key, m) in &distinct {
        if !contacts.contains_key(key) {
            let id = ContactId::new().0;
            contacts.insert(key.clone(), id);
            new_contacts.push(json!({
                "id": hex(id), "t": hex(key.0), "c": hex(key.1), "x": key.2,
                "n": m.from.display_name, "u": m.from.username,
            }));
        }
    }
    rows_stmt(
        conn,
        "INSERT INTO contacts (id, tenant_id, display_name, created_at) \
         SELECT unhex(value ->> 'id'), unhex(value ->> 't'), value ->> 'n', $2 FROM json_each($1)",
        &new_contacts,
        now,
    )
    .await?;
    rows_stmt(
        conn,
        "INSERT INTO contact_identities (tenant_id, channel_id, external_id, contact_id, username, created_at) \
         SELECT unhex(value ->> 't'), unhex(value ->> 'c'), value ->> 'x', unhex(value ->> 'id'), value ->> 'u', $2 \
         FROM json_each($1)",
        &new_contacts,
        now,
    )
    .await?;

    // 4. Conversations: one upsert for every contact that wrote.
    let convo_rows: Vec<Value> = contacts
        .iter()
        .filter(|(key, _)| distinct.contains_key(*key))
        .map(|((t, c, x), contact)| {
            json!({ "id": hex(ConversationId::new().0), "t": hex(*t), "c": hex(*c), "p": hex(*contact), "x": x })
        })
        .collect();
    // Snoozed conversations these messages wake: the team hears of it (`store::notices`).
    let mut woken: HashSet<(Uuid, Uuid)> = HashSet::new();
    for row in rows_stmt(
        conn,
        "SELECT lower(hex(v.channel_id)) AS c, lower(hex(v.contact_id)) AS p FROM json_each($1) j \
         JOIN conversations v ON v.tenant_id = unhex(j.value ->> 't') AND v.channel_id = unhex(j.value ->> 'c') \
         AND v.contact_id = unhex(j.value ->> 'p') WHERE v.status = 'snoozed' AND $2 IS NOT NULL",
        &convo_rows,
        now,
    )
    .await?
    {
        woken.insert((uuid_col(&row, "c")?, uuid_col(&row, "p")?));
    }
    let mut conversations: HashMap<(Uuid, Uuid), Uuid> = HashMap::new();
    for row in rows_stmt(
        conn,
        "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, external_id, last_message_at, created_at) \
         SELECT unhex(value ->> 'id'), unhex(value ->> 't'), unhex(value ->> 'c'), unhex(value ->> 'p'), \
         value ->> 'x', $2, $2 FROM json_each($1) WHERE true \
         ON CONFLICT (tenant_id, channel_id, contact_id) DO UPDATE SET last_message_at = excluded.last_message_at, \
         status = CASE conversations.status WHEN 'resolved' THEN 'open' \
         WHEN 'snoozed' THEN COALESCE(conversations.resume_status, 'open') ELSE conversations.status END, \
         snoozed_until = NULL, resume_status = NULL \
         RETURNING lower(hex(id)) AS id, lower(hex(channel_id)) AS c, lower(hex(contact_id)) AS p",
        &convo_rows,
        now,
    )
    .await?
    {
        conversations.insert((uuid_col(&row, "c")?, uuid_col(&row, "p")?), uuid_col(&row, "id")?);
    }

    // 5. Messages and the jobs they cause.
    let mut stored: HashMap<(usize, String), StoredMessage> = HashMap::new();
    let mut message_rows = Vec::with_capacity(fresh.len());
    let mut job_rows = Vec::new();
    let mut email_rows = Vec::new();
    for (i, m) in &fresh {
        let r = &requests[*i];
        let contact = contacts[&who(*i, m)];
        let conversation = *conversations
            .get(&(r.channel.0, contact))
            .ok_or_else(|| StoreError::Corrupt("conversation upsert returned no row".into()))?;
        let id = MessageId::new();
        let content = serde_json::to_value(&m.content)?;
        message_rows.push(json!({
            "id": hex(id.0), "e": hex(Uuid::now_v7()), "t": hex(r.tenant.0), "c": hex(r.channel.0), "v": hex(conversation),
            "p": hex(contact), "k": m.dedup_key.0, "pm": m.provider_message_id,
            "content": content.to_string(),
            "ts": m.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        }));
        for kind in jobs_for(&m.content) {
            job_rows.push(json!({ "id": hex(Uuid::now_v7()), "t": hex(r.tenant.0), "k": kind, "m": hex(id.0) }));
        }
        // Once per woken conversation, on its first message of the batch.
        if woken.remove(&(r.channel.0, contact)) {
            let payload = json!({ "type": CONVERSATION_WOKEN, "conversation_id": ConversationId(conversation) });
            email_rows.push(json!({ "id": hex(Uuid::now_v7()), "t": hex(r.tenant.0), "m": hex(id.0), "payload": payload.to_string() }));
        }
        stored.insert(
            (*i, m.dedup_key.0.clone()),
            StoredMessage {
                id,
                tenant_id: r.tenant,
                channel_id: r.channel,
                conversation_id: ConversationId(conversation),
                contact_id: ContactId(contact),
                direction: Direction::Inbound,
                content,
                provider_message_id: Some(m.provider_message_id.clone()),
                status: None,
                error: None,
                created_at: now,
            },
        );
    }
    rows_stmt(
        conn,
        "INSERT INTO messages (id, tenant_id, channel_id, conversation_id, contact_id, direction, dedup_key, \
         provider_message_id, content, provider_ts, created_at) \
         SELECT unhex(value ->> 'id'), unhex(value ->> 't'), unhex(value ->> 'c'), unhex(value ->> 'v'), \
         unhex(value ->> 'p'), 'in', value ->> 'k', value ->> 'pm', value ->> 'content', value ->> 'ts', $2 \
         FROM json_each($1)",
        &message_rows,
        now,
    )
    .await?;
    rows_stmt(
        conn,
        "INSERT INTO jobs (id, tenant_id, kind, message_id, next_attempt_at, created_at, updated_at) \
         SELECT unhex(value ->> 'id'), unhex(value ->> 't'), value ->> 'k', unhex(value ->> 'm'), $2, $2, $2 \
         FROM json_each($1)",
        &job_rows,
        now,
    )
    .await?;

    rows_stmt(
        conn,
        "INSERT INTO jobs (id, tenant_id, kind, message_id, payload, next_attempt_at, created_at, updated_at) \
         SELECT unhex(value ->> 'id'), unhex(value ->> 't'), 'email', unhex(value ->> 'm'), value ->> 'payload', \
         $2, $2, $2 FROM json_each($1)",
        &email_rows,
        now,
    )
    .await?;
    // `message.created` for the tenants whose webhook takes it (see `store::notices`).
    rows_stmt(
        conn,
        "INSERT INTO jobs (id, tenant_id, kind, message_id, payload, next_attempt_at, created_at, updated_at) \
         SELECT unhex(value ->> 'e'), unhex(value ->> 't'), 'event', unhex(value ->> 'id'), \
         '{\"type\":\"message.created\"}', $2, $2, $2 FROM json_each($1) \
         WHERE EXISTS (SELECT 1 FROM tenants WHERE tenants.id = unhex(value ->> 't') \
         AND tenants.webhook_events LIKE '%,message.created,%')",
        &message_rows,
        now,
    )
    .await?;

    // 6. One report per request, events in input order.
    Ok(requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if !ok(r) {
                return Err(StoreError::NotFound("channel"));
            }
            let mut report = IngestReport::default();
            for e in &r.events {
                if let InboundEvent::Message(m) = e {
                    match stored.remove(&(i, m.dedup_key.0.clone())) {
                        Some(msg) => report.stored.push(StoredEvent::Message(msg)),
                        None => report.duplicates += 1,
                    }
                }
            }
            Ok(report)
        })
        .collect())
}
