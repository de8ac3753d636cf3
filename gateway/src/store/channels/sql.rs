//! Channels SQL and the [`ChannelStore`](super::ChannelStore) impl, written once for both backends
//! (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::channels::ChannelStore;
        use crate::tenancy::{SystemScope, TenantScope};

        type Conn = crate::store::backend::Conn<$store>;
        type Row = crate::store::backend::Row<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{
            ChannelId, ChannelIdentity, ContactId, ConversationId, DeliveryStatus, InboundEvent,
            MessageId, OutboundBody, TenantId,
        };
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::notices::sql::$backend as notices;
        use crate::store::types::jobs_for;
        use crate::store::{
            Channel, ChannelPatch, Direction, IngestReport, NewChannel, StoreError, StoredEvent,
            StoredMessage,
        };

        fn channel_from_row(row: &Row) -> Result<Channel, StoreError> {
            let kind: String = row.try_get("kind")?;
            Ok(Channel {
                id: ChannelId(row.try_get("id")?),
                tenant_id: TenantId(row.try_get("tenant_id")?),
                kind: kind.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                name: row.try_get("name")?,
                config: row.try_get::<Json<serde_json::Value>, _>("config")?.0,
                enabled: row.try_get("enabled")?,
                created_at: row.try_get("created_at")?,
            })
        }

        async fn create_channel(
            conn: &mut Conn,
            tenant: TenantId,
            new: NewChannel,
            now: DateTime<Utc>,
        ) -> Result<Channel, StoreError> {
            let channel = Channel {
                id: ChannelId::new(),
                tenant_id: tenant,
                kind: new.kind,
                name: new.name,
                config: new.config,
                enabled: true,
                created_at: now,
            };
            sqlx::query(
                "INSERT INTO channels (id, tenant_id, kind, name, config, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(channel.id.0)
            .bind(tenant.0)
            .bind(channel.kind.as_str())
            .bind(&channel.name)
            .bind(Json(&channel.config))
            .bind(channel.enabled)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(channel)
        }

        /// `tenant: None` looks the channel up across tenants (webhooks, system scope only).
        async fn channel(
            conn: &mut Conn,
            tenant: Option<TenantId>,
            id: ChannelId,
        ) -> Result<Channel, StoreError> {
            let row = sqlx::query(
                "SELECT id, tenant_id, kind, name, config, enabled, created_at FROM channels \
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(id.0)
            .bind(tenant.map(|t| t.0))
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("channel"))?;
            channel_from_row(&row)
        }

        async fn contact_for(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            who: &ChannelIdentity,
            known: Option<Uuid>,
            now: DateTime<Utc>,
        ) -> Result<ContactId, StoreError> {
            if let Some(id) = known {
                return Ok(ContactId(id));
            }
            let contact = ContactId::new();
            sqlx::query("INSERT INTO contacts (id, tenant_id, display_name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(contact.0)
                .bind(tenant.0)
                .bind(who.display_name.as_deref())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO contact_identities (tenant_id, channel_id, external_id, contact_id, username, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(channel.0)
            .bind(&who.id)
            .bind(contact.0)
            .bind(who.username.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(contact);
            }
            // Another transaction created this identity first: use its contact.
            sqlx::query("DELETE FROM contacts WHERE id = $1").bind(contact.0).execute(&mut *conn).await?;
            find_contact(&mut *conn, tenant, channel, &who.id)
                .await?
                .map(ContactId)
                .ok_or(StoreError::NotFound("contact"))
        }

        async fn find_contact(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            external_id: &str,
        ) -> Result<Option<Uuid>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT contact_id FROM contact_identities \
                 WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3",
            )
            .bind(tenant.0)
            .bind(channel.0)
            .bind(external_id)
            .fetch_optional(&mut *conn)
            .await?)
        }

        /// The contact's conversation on the channel, made on their first message; a message to a
        /// resolved conversation reopens it, one to a snoozed conversation brings it back to the
        /// status it had (the same rule as SQLite's batched ingest in `store/sqlite/bulk.rs`).
        /// Also says whether the message woke a snoozed conversation (the team hears of it).
        async fn conversation_for(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            contact: ContactId,
            external_id: &str,
            now: DateTime<Utc>,
        ) -> Result<(ConversationId, bool), StoreError> {
            let snoozed = notices::snoozed(&mut *conn, tenant, channel, contact).await?;
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, external_id, last_message_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (tenant_id, channel_id, contact_id) DO UPDATE SET last_message_at = excluded.last_message_at, \
                 status = CASE conversations.status WHEN 'resolved' THEN 'open' \
                 WHEN 'snoozed' THEN COALESCE(conversations.resume_status, 'open') ELSE conversations.status END, \
                 snoozed_until = NULL, resume_status = NULL \
                 RETURNING id",
            )
            .bind(ConversationId::new().0)
            .bind(tenant.0)
            .bind(channel.0)
            .bind(contact.0)
            .bind(external_id)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            Ok((ConversationId(id), snoozed))
        }


        /// Everything ingesting one message needs to know, in one round trip: whether the channel
        /// is the tenant's, whether the message is a redelivery, and the sender's contact.
        async fn lookup(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            key: &str,
            external_id: &str,
        ) -> Result<(bool, bool, Option<Uuid>), StoreError> {
            let row = sqlx::query(
                "SELECT \
                 (SELECT COUNT(*) FROM channels WHERE id = $1 AND tenant_id = $2) AS channel_ok, \
                 (SELECT COUNT(*) FROM messages WHERE tenant_id = $2 AND channel_id = $1 AND dedup_key = $3) AS duplicate, \
                 (SELECT contact_id FROM contact_identities \
                   WHERE tenant_id = $2 AND channel_id = $1 AND external_id = $4) AS contact_id",
            )
            .bind(channel.0)
            .bind(tenant.0)
            .bind(key)
            .bind(external_id)
            .fetch_one(&mut *conn)
            .await?;
            let channel_ok: i64 = row.try_get("channel_ok")?;
            let duplicate: i64 = row.try_get("duplicate")?;
            Ok((channel_ok > 0, duplicate > 0, row.try_get("contact_id")?))
        }

        async fn insert_job(
            conn: &mut Conn,
            tenant: TenantId,
            kind: &str,
            message: MessageId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, message_id, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $5) ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(kind)
            .bind(message.0)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Store every event of one channel; the caller owns the transaction.
        pub(in crate::store) async fn ingest(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            events: Vec<InboundEvent>,
            now: DateTime<Utc>,
        ) -> Result<IngestReport, StoreError> {
            let mut report = IngestReport::default();
            let mut channel_checked = false;
            for event in events {
                if !channel_checked && !matches!(event, InboundEvent::Message(_)) {
                    self::channel(&mut *conn, Some(tenant), channel).await?;
                    channel_checked = true;
                }
                let stored = match event {
                    InboundEvent::Message(m) => {
                        let (channel_ok, duplicate, known) =
                            lookup(&mut *conn, tenant, channel, &m.dedup_key.0, &m.from.id).await?;
                        if !channel_ok {
                            return Err(StoreError::NotFound("channel"));
                        }
                        channel_checked = true;
                        if duplicate {
                            None
                        } else {
                            let contact = contact_for(&mut *conn, tenant, channel, &m.from, known, now).await?;
                            let (conversation, woken) =
                                conversation_for(&mut *conn, tenant, channel, contact, &m.from.id, now).await?;
                            let id = MessageId::new();
                            let content = serde_json::to_value(&m.content)?;
                            let inserted = sqlx::query(
                                "INSERT INTO messages (id, tenant_id, channel_id, conversation_id, contact_id, direction, \
                                 dedup_key, provider_message_id, content, provider_ts, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, 'in', $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                            )
                            .bind(id.0)
                            .bind(tenant.0)
                            .bind(channel.0)
                            .bind(conversation.0)
                            .bind(contact.0)
                            .bind(&m.dedup_key.0)
                            .bind(&m.provider_message_id)
                            .bind(Json(&content))
                            .bind(m.timestamp)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                            if inserted == 0 {
                                None
                            } else {
                                for kind in jobs_for(&m.content) {
                                    insert_job(&mut *conn, tenant, kind, id, now).await?;
                                }
                                notices::message_created(&mut *conn, tenant, id, now).await?;
                                if woken {
                                    notices::woken_email(&mut *conn, tenant, conversation, id, now).await?;
                                }
                                Some(StoredEvent::Message(StoredMessage {
                                    id,
                                    tenant_id: tenant,
                                    channel_id: channel,
                                    conversation_id: conversation,
                                    contact_id: contact,
                                    direction: Direction::Inbound,
                                    content,
                                    provider_message_id: Some(m.provider_message_id),
                                    status: None,
                                    error: None,
                                    created_at: now,
                                }))
                            }
                        }
                    }
                    InboundEvent::Status(s) => {
                        let inserted = sqlx::query(
                            "INSERT INTO message_status (id, tenant_id, channel_id, dedup_key, provider_message_id, \
                             status_rank, error_code, error_title, provider_ts, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                        )
                        .bind(Uuid::now_v7())
                        .bind(tenant.0)
                        .bind(channel.0)
                        .bind(&s.dedup_key.0)
                        .bind(&s.provider_message_id)
                        .bind(s.status.rank())
                        .bind(s.error.as_ref().map(|e| e.code.as_str()))
                        .bind(s.error.as_ref().map(|e| e.title.as_str()))
                        .bind(s.timestamp)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if inserted == 0 {
                            None
                        } else {
                            let applied = sqlx::query(
                                "UPDATE messages SET status_rank = $1, error_code = $2, error_title = $3 \
                                 WHERE tenant_id = $4 AND channel_id = $5 AND provider_message_id = $6 \
                                 AND direction = 'out' AND status_rank < $1 AND status_rank <> $7 \
                                 RETURNING id, conversation_id",
                            )
                            .bind(s.status.rank())
                            .bind(s.error.as_ref().map(|e| e.code.as_str()))
                            .bind(s.error.as_ref().map(|e| e.title.as_str()))
                            .bind(tenant.0)
                            .bind(channel.0)
                            .bind(&s.provider_message_id)
                            .bind(DeliveryStatus::Failed.rank())
                            .fetch_optional(&mut *conn)
                            .await?
                            .map(|row| -> Result<_, StoreError> {
                                Ok((MessageId(row.try_get("id")?), ConversationId(row.try_get("conversation_id")?)))
                            })
                            .transpose()?;
                            Some(StoredEvent::Status {
                                provider_message_id: s.provider_message_id,
                                status: s.status,
                                applied,
                            })
                        }
                    }
                    InboundEvent::Unknown(u) => {
                        let id = Uuid::now_v7();
                        let inserted = sqlx::query(
                            "INSERT INTO unknown_events (id, tenant_id, channel_id, dedup_key, kind, sender, raw, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(tenant.0)
                        .bind(channel.0)
                        .bind(&u.dedup_key.0)
                        .bind(&u.kind)
                        .bind(u.from.as_ref().map(|f| f.id.as_str()))
                        .bind(Json(&u.raw))
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        (inserted == 1).then(|| StoredEvent::Unknown { id, kind: u.kind })
                    }
                };
                match stored {
                    Some(event) => report.stored.push(event),
                    None => report.duplicates += 1,
                }
            }
            if !channel_checked {
                self::channel(&mut *conn, Some(tenant), channel).await?;
            }
            Ok(report)
        }

        async fn enqueue_outbound(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            body: OutboundBody,
            reply_to: Option<MessageId>,
            now: DateTime<Utc>,
        ) -> Result<StoredMessage, StoreError> {
            let content = serde_json::to_value(&body)?;
            enqueue_content(conn, tenant, conversation, content, reply_to, now).await
        }

        /// [`enqueue_outbound`] with the stored content as given: a body, plus what the sender
        /// reads beside it (a program step's `fallback_template`).
        pub(in crate::store) async fn enqueue_content(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            content: serde_json::Value,
            reply_to: Option<MessageId>,
            now: DateTime<Utc>,
        ) -> Result<StoredMessage, StoreError> {
            let row = sqlx::query(
                "SELECT c.channel_id, c.contact_id, k.kind FROM conversations c \
                 JOIN channels k ON k.id = c.channel_id WHERE c.id = $1 AND c.tenant_id = $2",
            )
            .bind(conversation.0)
            .bind(tenant.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
            let channel = ChannelId(row.try_get("channel_id")?);
            let contact = ContactId(row.try_get("contact_id")?);
            let kind: String = row.try_get("kind")?;
            let id = MessageId::new();
            sqlx::query(
                "INSERT INTO messages (id, tenant_id, channel_id, conversation_id, contact_id, direction, \
                 content, reply_to, status_rank, created_at) VALUES ($1, $2, $3, $4, $5, 'out', $6, $7, $8, $9)",
            )
            .bind(id.0)
            .bind(tenant.0)
            .bind(channel.0)
            .bind(conversation.0)
            .bind(contact.0)
            .bind(Json(&content))
            .bind(reply_to.map(|m| m.0))
            .bind(DeliveryStatus::Pending.rank())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO outbox (id, tenant_id, channel_id, conversation_id, message_id, kind, \
                 next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(channel.0)
            .bind(conversation.0)
            .bind(id.0)
            .bind(&kind)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE conversations SET last_message_at = $1 WHERE id = $2")
                .bind(now)
                .bind(conversation.0)
                .execute(&mut *conn)
                .await?;
            notices::message_created(&mut *conn, tenant, id, now).await?;
            Ok(StoredMessage {
                id,
                tenant_id: tenant,
                channel_id: channel,
                conversation_id: conversation,
                contact_id: contact,
                direction: Direction::Outbound,
                content,
                provider_message_id: None,
                status: Some(DeliveryStatus::Pending),
                error: None,
                created_at: now,
            })
        }

        async fn channels(
            conn: &mut Conn,
            tenant: TenantId,
        ) -> Result<Vec<crate::store::Channel>, StoreError> {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM channels WHERE tenant_id = $1 ORDER BY created_at, id",
            )
            .bind(tenant.0)
            .fetch_all(&mut *conn)
            .await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(channel(conn, Some(tenant), coach_connector_api::ChannelId(id)).await?);
            }
            Ok(out)
        }

        async fn update_channel(
            conn: &mut Conn,
            tenant: TenantId,
            id: coach_connector_api::ChannelId,
            patch: crate::store::ChannelPatch,
            now: DateTime<Utc>,
        ) -> Result<crate::store::Channel, StoreError> {
            let current = channel(conn, Some(tenant), id).await?;
            let name = patch.name.unwrap_or(current.name);
            let config = patch.config.unwrap_or(current.config);
            let enabled = patch.enabled.unwrap_or(current.enabled);
            sqlx::query(
                "UPDATE channels SET name = $1, config = $2, enabled = $3, updated_at = $4 \
                 WHERE id = $5 AND tenant_id = $6",
            )
            .bind(&name)
            .bind(sqlx::types::Json(&config))
            .bind(enabled)
            .bind(now)
            .bind(id.0)
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
            channel(conn, Some(tenant), id).await
        }

        async fn delete_channel(
            conn: &mut Conn,
            tenant: TenantId,
            id: coach_connector_api::ChannelId,
        ) -> Result<crate::store::channels::ChannelRemoval, StoreError> {
            use coach_connector_api::{ContactId, MessageId};
            let media: Vec<(Uuid, Uuid)> = sqlx::query_as(
                "SELECT contact_id, id FROM messages WHERE tenant_id = $1 AND channel_id = $2 \
                 AND content -> 'file' IS NOT NULL",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_all(&mut *conn)
            .await?;
            let n = sqlx::query("DELETE FROM channels WHERE id = $1 AND tenant_id = $2")
                .bind(id.0)
                .bind(tenant.0)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("channel"));
            }
            let orphans: Vec<Uuid> = sqlx::query_scalar(
                "DELETE FROM contacts WHERE tenant_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM contact_identities i WHERE i.tenant_id = $1 AND i.contact_id = contacts.id) \
                 RETURNING id",
            )
            .bind(tenant.0)
            .fetch_all(&mut *conn)
            .await?;
            Ok(crate::store::channels::ChannelRemoval {
                media: media.into_iter().map(|(c, m)| (ContactId(c), MessageId(m))).collect(),
                orphans: orphans.into_iter().map(ContactId).collect(),
            })
        }
        crate::store::backend::store_impl! { ChannelStore for $store;
            write create_channel(scope: &TenantScope, new: NewChannel) -> Channel
                = |c, tenant| create_channel(c, tenant, new, Utc::now());
            read channel(scope: &TenantScope, id: ChannelId) -> Channel
                = |c, t| channel(c, Some(t), id);
            read channel_for_webhook(sys: &SystemScope, id: ChannelId) -> Channel
                = |c, ()| channel(c, None, id);
            read channels(scope: &TenantScope) -> Vec<Channel> = |c, t| channels(c, t);
            write update_channel(scope: &TenantScope, id: ChannelId, patch: ChannelPatch) -> Channel
                = |c, tenant| update_channel(c, tenant, id, patch, Utc::now());
            write delete_channel(scope: &TenantScope, id: ChannelId) -> crate::store::channels::ChannelRemoval
                = |c, tenant| delete_channel(c, tenant, id);
            write enqueue_outbound(
                scope: &TenantScope,
                conversation: ConversationId,
                body: OutboundBody,
                reply_to: Option<MessageId>,
            ) -> StoredMessage
                = |c, tenant| enqueue_outbound(c, tenant, conversation, body, reply_to, Utc::now());
            {
                async fn ingest(
                    &self,
                    scope: &TenantScope,
                    channel: ChannelId,
                    events: Vec<InboundEvent>,
                ) -> Result<IngestReport, StoreError> {
                    self.ingest_events(scope, channel, events).await
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
