//! Account SQL shared by both backends (see `ops.rs` for the conventions). Users, sessions and
//! signing keys are read before a tenant is known, so these run under the system scope.

macro_rules! account_ops {
    ($conn:ty, $row:ty) => {
        use chrono::{DateTime, Utc};
        use coach_connector_api::TenantId;
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::accounts::{
            Credentials, NewRefresh, RefreshUse, Role, SigningKeyRecord, User, UserId,
        };
        use crate::store::{StoreError, Tenant};

        fn unique_violation(e: &sqlx::Error) -> bool {
            e.as_database_error().is_some_and(|d| d.is_unique_violation())
        }

        /// Tenant, owner and membership in one transaction.
        pub(super) async fn register(
            conn: &mut $conn,
            email: &str,
            password_hash: &str,
            tenant_name: &str,
            now: DateTime<Utc>,
        ) -> Result<(Tenant, User), StoreError> {
            let user = User {
                id: UserId(Uuid::now_v7()),
                email: email.to_owned(),
                created_at: now,
                platform_admin: false,
            };
            let created = sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(user.id.0)
            .bind(&user.email)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *conn)
            .await;
            match created {
                Err(e) if unique_violation(&e) => {
                    return Err(StoreError::Conflict("an account with this e-mail exists".into()));
                }
                other => other?,
            };
            let tenant = super::ops::create_tenant(conn, tenant_name, now).await?;
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant.id.0)
            .bind(user.id.0)
            .bind(Role::Owner.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok((tenant, user))
        }

        fn user_from_row(row: &$row) -> Result<User, StoreError> {
            Ok(User {
                platform_admin: row.try_get("platform_admin")?,
                id: UserId(row.try_get("id")?),
                email: row.try_get("email")?,
                created_at: row.try_get("created_at")?,
            })
        }

        pub(super) async fn credentials(
            conn: &mut $conn,
            email: &str,
        ) -> Result<Option<Credentials>, StoreError> {
            let row = sqlx::query(
                "SELECT id, email, password_hash, created_at, platform_admin FROM users WHERE lower(email) = lower($1)",
            )
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|row| Ok(Credentials { user: user_from_row(&row)?, password_hash: row.try_get("password_hash")? }))
                .transpose()
        }

        pub(super) async fn user(conn: &mut $conn, id: UserId) -> Result<User, StoreError> {
            let row = sqlx::query("SELECT id, email, created_at, platform_admin FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("user"))?;
            user_from_row(&row)
        }

        /// The user's tenants and roles, oldest membership first.
        pub(super) async fn memberships(
            conn: &mut $conn,
            user: UserId,
        ) -> Result<Vec<(TenantId, Role)>, StoreError> {
            let rows = sqlx::query(
                "SELECT m.tenant_id, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
                 WHERE m.user_id = $1 AND t.status = 'active' ORDER BY m.created_at, m.tenant_id",
            )
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    let role: String = row.try_get("role")?;
                    Ok((TenantId(row.try_get("tenant_id")?), role.parse().map_err(StoreError::Corrupt)?))
                })
                .collect()
        }

        pub(super) async fn create_refresh(
            conn: &mut $conn,
            token: &NewRefresh,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, family_id, user_id, tenant_id, token_hash, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(token.id)
            .bind(token.family_id)
            .bind(token.user_id.0)
            .bind(token.tenant_id.0)
            .bind(&token.token_hash)
            .bind(token.expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Rotate a refresh token: valid -> replaced by `next` (whose session, user and tenant
        /// are taken from the presented token); already replaced -> the whole family is revoked
        /// (someone replayed a stolen token); otherwise invalid.
        pub(super) async fn use_refresh(
            conn: &mut $conn,
            token_hash: &[u8],
            next: &NewRefresh,
            now: DateTime<Utc>,
        ) -> Result<RefreshUse, StoreError> {
            let Some(row) = sqlx::query(
                "SELECT id, family_id, user_id, tenant_id, expires_at, replaced_by, revoked_at \
                 FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&mut *conn)
            .await?
            else {
                return Ok(RefreshUse::Invalid);
            };
            let id: Uuid = row.try_get("id")?;
            let family_id: Uuid = row.try_get("family_id")?;
            let replaced: Option<Uuid> = row.try_get("replaced_by")?;
            let revoked: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
            let expires: DateTime<Utc> = row.try_get("expires_at")?;
            if replaced.is_some() {
                revoke_family(conn, family_id, now).await?;
                return Ok(RefreshUse::Reused { family_id });
            }
            if revoked.is_some() || expires <= now {
                return Ok(RefreshUse::Invalid);
            }
            // Guarded by `replaced_by IS NULL`: of two concurrent uses, one rotates, the other
            // is treated as reuse.
            let rotated = sqlx::query("UPDATE refresh_tokens SET replaced_by = $1 WHERE id = $2 AND replaced_by IS NULL")
                .bind(next.id)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if rotated == 0 {
                revoke_family(conn, family_id, now).await?;
                return Ok(RefreshUse::Reused { family_id });
            }
            let user_id = UserId(row.try_get("user_id")?);
            let tenant_id = TenantId(row.try_get("tenant_id")?);
            let next = NewRefresh { family_id, user_id, tenant_id, ..next.clone() };
            create_refresh(conn, &next, now).await?;
            Ok(RefreshUse::Rotated { user_id, tenant_id, family_id })
        }

        pub(super) async fn revoke_family(
            conn: &mut $conn,
            family_id: Uuid,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        pub(super) async fn signing_keys(conn: &mut $conn) -> Result<Vec<SigningKeyRecord>, StoreError> {
            let rows = sqlx::query(
                "SELECT kid, private_der, public_raw, created_at FROM signing_keys ORDER BY created_at DESC, kid",
            )
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(SigningKeyRecord {
                        kid: row.try_get("kid")?,
                        private_der: row.try_get("private_der")?,
                        public_raw: row.try_get("public_raw")?,
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect()
        }

        pub(super) async fn add_signing_key(conn: &mut $conn, key: &SigningKeyRecord) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO signing_keys (kid, private_der, public_raw, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&key.kid)
            .bind(&key.private_der)
            .bind(&key.public_raw)
            .bind(key.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        pub(super) async fn tenant_profile(
            conn: &mut $conn,
            tenant: TenantId,
        ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
            let row = sqlx::query("SELECT id, name, created_at, profile FROM tenants WHERE id = $1")
                .bind(tenant.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("tenant"))?;
            let t = Tenant {
                id: TenantId(row.try_get("id")?),
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
            };
            let stored = row.try_get::<sqlx::types::Json<serde_json::Value>, _>("profile")?.0;
            Ok((t, crate::tenant::TenantProfile::from_stored(stored)))
        }

        pub(super) async fn update_tenant_profile(
            conn: &mut $conn,
            tenant: TenantId,
            name: Option<String>,
            profile: Option<crate::tenant::TenantProfile>,
        ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
            sqlx::query(
                "UPDATE tenants SET name = COALESCE($1, name), profile = COALESCE($2, profile) WHERE id = $3",
            )
            .bind(name)
            .bind(profile.map(|p| sqlx::types::Json(p.to_stored())))
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
            tenant_profile(conn, tenant).await
        }

        pub(super) async fn set_password(
            conn: &mut $conn,
            user: UserId,
            password_hash: &str,
            now: DateTime<Utc>,
        ) -> Result<Vec<Uuid>, StoreError> {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            let families: Vec<Uuid> = sqlx::query_scalar(
                "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            Ok(families)
        }

        pub(super) async fn channels(
            conn: &mut $conn,
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
                out.push(super::ops::channel(conn, Some(tenant), coach_connector_api::ChannelId(id)).await?);
            }
            Ok(out)
        }

        pub(super) async fn update_channel(
            conn: &mut $conn,
            tenant: TenantId,
            id: coach_connector_api::ChannelId,
            patch: crate::store::ChannelPatch,
            now: DateTime<Utc>,
        ) -> Result<crate::store::Channel, StoreError> {
            let current = super::ops::channel(conn, Some(tenant), id).await?;
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
            super::ops::channel(conn, Some(tenant), id).await
        }

        pub(super) async fn delete_channel(
            conn: &mut $conn,
            tenant: TenantId,
            id: coach_connector_api::ChannelId,
        ) -> Result<(), StoreError> {
            let n = sqlx::query("DELETE FROM channels WHERE id = $1 AND tenant_id = $2")
                .bind(id.0)
                .bind(tenant.0)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("channel"));
            }
            Ok(())
        }
        pub(super) async fn set_platform_admin(conn: &mut $conn, user: UserId, on: bool) -> Result<(), StoreError> {
            let n = sqlx::query("UPDATE users SET platform_admin = $1 WHERE id = $2")
                .bind(on)
                .bind(user.0)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("user"));
            }
            Ok(())
        }

        pub(super) async fn create_password_reset(
            conn: &mut $conn,
            user: UserId,
            token_hash: &[u8],
            expires_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO password_resets (id, user_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(user.0)
            .bind(token_hash)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Whose unused, unexpired reset token this is; with `consume`, it is used up
        /// (atomically: of two concurrent uses one wins).
        pub(super) async fn password_reset(
            conn: &mut $conn,
            token_hash: &[u8],
            consume: bool,
            now: DateTime<Utc>,
        ) -> Result<Option<UserId>, StoreError> {
            let sql = if consume {
                "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
                 AND expires_at > $2 RETURNING user_id"
            } else {
                "SELECT user_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
            };
            let user: Option<Uuid> = sqlx::query_scalar(sql).bind(token_hash).bind(now).fetch_optional(&mut *conn).await?;
            Ok(user.map(UserId))
        }

        pub(super) async fn all_tenants(conn: &mut $conn) -> Result<Vec<crate::store::TenantSummary>, StoreError> {
            let rows = sqlx::query(
                "SELECT t.id, t.name, t.status, t.created_at, \
                 (SELECT COUNT(*) FROM memberships m WHERE m.tenant_id = t.id) AS members \
                 FROM tenants t ORDER BY t.created_at, t.id",
            )
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(crate::store::TenantSummary {
                        id: TenantId(r.try_get("id")?),
                        name: r.try_get("name")?,
                        status: crate::store::stored_enum(r.try_get("status")?)?,
                        members: r.try_get("members")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        }

        /// Suspend (`active = false`) or resume a tenant; suspending ends its sessions.
        pub(super) async fn set_tenant_active(
            conn: &mut $conn,
            tenant: TenantId,
            active: bool,
            now: DateTime<Utc>,
        ) -> Result<Vec<Uuid>, StoreError> {
            let status = if active {
                crate::store::TenantStatus::Active
            } else {
                crate::store::TenantStatus::Suspended
            }
            .as_str();
            let n = sqlx::query("UPDATE tenants SET status = $1 WHERE id = $2")
                .bind(status)
                .bind(tenant.0)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
            if active {
                return Ok(Vec::new());
            }
            let families: Vec<Uuid> = sqlx::query_scalar(
                "SELECT DISTINCT family_id FROM refresh_tokens WHERE tenant_id = $1 AND revoked_at IS NULL",
            )
            .bind(tenant.0)
            .fetch_all(&mut *conn)
            .await?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(tenant.0)
                .execute(&mut *conn)
                .await?;
            Ok(families)
        }
    };
}

pub(crate) use account_ops;
