//! Contact import SQL and the [`ContactStore`](super::ContactStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        type Conn = crate::store::backend::Conn<$store>;

        use crate::store::contacts::{ContactStore, ImportCounts, ImportedContact};
        use crate::store::StoreError;
        use crate::tenancy::TenantScope;
        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ContactId, TenantId};
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        /// A contact's stored details.
        #[derive(PartialEq)]
        struct Details {
            name: Option<String>,
            time_zone: Option<String>,
            language: Option<String>,
            consent_at: Option<DateTime<Utc>>,
            attributes: serde_json::Map<String, serde_json::Value>,
        }

        impl Details {
            /// These details with what `row` states.
            fn merged(&self, row: &ImportedContact, now: DateTime<Utc>) -> Self {
                let mut attributes = self.attributes.clone();
                attributes.extend(row.attributes.clone());
                Self {
                    name: row.name.clone().or_else(|| self.name.clone()),
                    time_zone: row.time_zone.clone().or_else(|| self.time_zone.clone()),
                    language: row.language.clone().or_else(|| self.language.clone()),
                    consent_at: match row.consent {
                        Some(true) => self.consent_at.or(Some(now)),
                        Some(false) => None,
                        None => self.consent_at,
                    },
                    attributes,
                }
            }
        }

        async fn import_contacts(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            rows: &[ImportedContact],
            apply: bool,
        ) -> Result<ImportCounts, StoreError> {
            let known = sqlx::query("SELECT 1 FROM channels WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(channel.0)
                .fetch_optional(&mut *conn)
                .await?;
            if known.is_none() {
                return Err(StoreError::NotFound("channel"));
            }
            let now = Utc::now();
            let mut counts = ImportCounts::default();
            for row in rows {
                let found = sqlx::query(
                    "SELECT c.id, c.display_name, c.time_zone, c.language, c.consent_at, c.attributes \
                     FROM contact_identities i JOIN contacts c ON c.id = i.contact_id \
                     WHERE i.tenant_id = $1 AND i.channel_id = $2 AND i.external_id = $3",
                )
                .bind(tenant.0)
                .bind(channel.0)
                .bind(&row.external_id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(found) = found else {
                    counts.created += 1;
                    if apply {
                        let id = coach_connector_api::ContactId::new().0;
                        let new = Details {
                            name: None,
                            time_zone: None,
                            language: None,
                            consent_at: None,
                            attributes: Default::default(),
                        }
                        .merged(row, now);
                        sqlx::query(
                            "INSERT INTO contacts (id, tenant_id, display_name, created_at, time_zone, \
                             language, consent_at, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(id)
                        .bind(tenant.0)
                        .bind(&new.name)
                        .bind(now)
                        .bind(&new.time_zone)
                        .bind(&new.language)
                        .bind(new.consent_at)
                        .bind(Json(&new.attributes))
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query(
                            "INSERT INTO contact_identities (tenant_id, channel_id, external_id, contact_id, \
                             created_at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(tenant.0)
                        .bind(channel.0)
                        .bind(&row.external_id)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    continue;
                };
                let id: Uuid = found.try_get("id")?;
                let stored = Details {
                    name: found.try_get("display_name")?,
                    time_zone: found.try_get("time_zone")?,
                    language: found.try_get("language")?,
                    consent_at: found.try_get("consent_at")?,
                    attributes: found
                        .try_get::<Json<serde_json::Map<String, serde_json::Value>>, _>("attributes")?
                        .0,
                };
                let new = stored.merged(row, now);
                if new == stored {
                    counts.unchanged += 1;
                    continue;
                }
                counts.updated += 1;
                if apply {
                    sqlx::query(
                        "UPDATE contacts SET display_name = $3, time_zone = $4, language = $5, \
                         consent_at = $6, attributes = $7 WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.0)
                    .bind(id)
                    .bind(&new.name)
                    .bind(&new.time_zone)
                    .bind(&new.language)
                    .bind(new.consent_at)
                    .bind(Json(&new.attributes))
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Ok(counts)
        }

        async fn contact_language(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
        ) -> Result<crate::store::contacts::ContactLanguage, StoreError> {
            let row = sqlx::query("SELECT language, detected_language FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(contact.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("contact"))?;
            Ok(crate::store::contacts::ContactLanguage {
                chosen: row.try_get("language")?,
                detected: row.try_get("detected_language")?,
            })
        }

        async fn set_language(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
            column: &str,
            language: Option<&str>,
        ) -> Result<(), StoreError> {
            // `column` is one of two names written below, never input.
            let n = sqlx::query(&format!(
                "UPDATE contacts SET {column} = $3 WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.0)
            .bind(contact.0)
            .bind(language)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("contact"));
            }
            Ok(())
        }

        async fn chat_consented(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            external_id: &str,
        ) -> Result<bool, StoreError> {
            let found: Option<Json<serde_json::Map<String, serde_json::Value>>> = sqlx::query_scalar(
                "SELECT c.attributes FROM contacts c JOIN contact_identities i ON i.contact_id = c.id \
                 WHERE i.tenant_id = $1 AND i.channel_id = $2 AND i.external_id = $3",
            )
            .bind(tenant.0)
            .bind(channel.0)
            .bind(external_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(found.is_some_and(|a| a.0.get(crate::store::contacts::CHAT_CONSENT_AT).is_some_and(serde_json::Value::is_string)))
        }

        crate::store::backend::store_impl! { ContactStore for $store;
            read chat_consented(scope: &TenantScope, channel: ChannelId, external_id: &str)
                -> bool = own(external_id) |c, t| async move { chat_consented(c, t, channel, &external_id).await };
            write import_contacts(scope: &TenantScope, channel: ChannelId, rows: Vec<ImportedContact>)
                -> ImportCounts = |c, t| async move { import_contacts(c, t, channel, &rows, true).await };
            read preview_import(scope: &TenantScope, channel: ChannelId, rows: Vec<ImportedContact>)
                -> ImportCounts = |c, t| async move { import_contacts(c, t, channel, &rows, false).await };
            read contact_language(scope: &TenantScope, contact: ContactId)
                -> crate::store::contacts::ContactLanguage = |c, t| contact_language(c, t, contact);
            write set_detected_language(scope: &TenantScope, contact: ContactId, language: String) -> ()
                = |c, t| async move { set_language(c, t, contact, "detected_language", Some(&language)).await };
            write set_contact_language(scope: &TenantScope, contact: ContactId, language: Option<String>) -> ()
                = |c, t| async move { set_language(c, t, contact, "language", language.as_deref()).await };
        }
    };
}

crate::store::backend::for_each_backend!(ops);
