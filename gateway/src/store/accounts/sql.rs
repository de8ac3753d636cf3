//! Accounts SQL and the [`AccountStore`](super::AccountStore) impl, written once for both backends
//! (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use futures::FutureExt as _;

        use crate::store::backend::Backend as _;
        use crate::store::accounts::AccountStore;
        use crate::tenancy::{SystemScope, TenantScope};

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::TenantId;
        use sqlx::{FromRow as _, Row as _};
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::accounts::{
            Credentials, NewRefresh, PendingVerification, RefreshUse, Role, SigningKeyRecord, TenantSummary, User, UserId,
        };
        use crate::store::{AuditEntry, AuditRecord, StoreError, Tenant};

        fn unique_violation(e: &sqlx::Error) -> bool {
            e.as_database_error().is_some_and(|d| d.is_unique_violation())
        }

        /// Tenant, owner and membership in one transaction.
        async fn register(
            conn: &mut Conn,
            email: &str,
            password_hash: &str,
            tenant_name: &str,
            verification: Option<&PendingVerification>,
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
            let tenant = create_tenant(conn, tenant_name, now).await?;
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant.id.0)
            .bind(user.id.0)
            .bind(Role::Owner.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if let Some(pending) = verification {
                pending_verification(conn, user.id, pending, now).await?;
            }
            Ok((tenant, user))
        }

        /// Mark the account unconfirmed with this link's token (replacing an earlier one).
        pub(crate) async fn pending_verification(
            conn: &mut Conn,
            user: UserId,
            pending: &PendingVerification,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO email_verifications (user_id, token_hash, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
                 token_hash = excluded.token_hash, expires_at = excluded.expires_at, created_at = excluded.created_at",
            )
            .bind(user.0)
            .bind(&pending.token_hash)
            .bind(pending.expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn renew_email_verification(
            conn: &mut Conn,
            user: UserId,
            pending: &PendingVerification,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let n = sqlx::query(
                "UPDATE email_verifications SET token_hash = $2, expires_at = $3, created_at = $4 WHERE user_id = $1",
            )
            .bind(user.0)
            .bind(&pending.token_hash)
            .bind(pending.expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(n > 0)
        }

        async fn confirm_email(
            conn: &mut Conn,
            token_hash: &[u8],
            now: DateTime<Utc>,
        ) -> Result<Option<UserId>, StoreError> {
            let user: Option<Uuid> = sqlx::query_scalar(
                "DELETE FROM email_verifications WHERE token_hash = $1 AND expires_at > $2 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(user.map(UserId))
        }

        async fn email_confirmed_by_reset(conn: &mut Conn, user: UserId) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM email_verifications WHERE user_id = $1")
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn email_unconfirmed(conn: &mut Conn, user: UserId) -> Result<bool, StoreError> {
            let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM email_verifications WHERE user_id = $1")
                .bind(user.0)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(found.is_some())
        }

        async fn credentials(
            conn: &mut Conn,
            email: &str,
        ) -> Result<Option<Credentials>, StoreError> {
            let row = sqlx::query(
                "SELECT id, email, password_hash, created_at, platform_admin FROM users WHERE lower(email) = lower($1)",
            )
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|row| Ok(Credentials { user: User::from_row(&row)?, password_hash: row.try_get("password_hash")? }))
                .transpose()
        }

        async fn user(conn: &mut Conn, id: UserId) -> Result<User, StoreError> {
            let row = sqlx::query("SELECT id, email, created_at, platform_admin FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("user"))?;
            Ok(User::from_row(&row)?)
        }

        /// The user's tenants and roles, the one of their latest session first (then the
        /// oldest membership first).
        async fn memberships(
            conn: &mut Conn,
            user: UserId,
        ) -> Result<Vec<(TenantId, Role)>, StoreError> {
            let rows = sqlx::query(
                "SELECT m.tenant_id, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
                 WHERE m.user_id = $1 AND t.status = 'active' \
                 ORDER BY (SELECT MAX(r.created_at) FROM refresh_tokens r \
                     WHERE r.user_id = m.user_id AND r.tenant_id = m.tenant_id) DESC NULLS LAST, \
                   m.created_at, m.tenant_id",
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

        // Sessions and signing keys (read before a tenant is known): `sessions_sql.rs`.
        crate::store::accounts::sessions_sql::session_ops!();

        async fn tenant_profile(
            conn: &mut Conn,
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

        async fn update_tenant_profile(
            conn: &mut Conn,
            tenant: TenantId,
            name: Option<String>,
            change: Option<crate::store::accounts::ProfileChange>,
        ) -> Result<(Tenant, crate::tenant::TenantProfile), StoreError> {
            // Read and changed in this transaction, the row locked: no save is lost to another.
            let profile = match change {
                Some(change) => {
                    let stored: Option<sqlx::types::Json<serde_json::Value>> = sqlx::query_scalar(&format!(
                        "SELECT profile FROM tenants WHERE id = $1 {}",
                        <$store as crate::store::backend::Backend>::ROW_LOCK
                    ))
                    .bind(tenant.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(stored) = stored else { return Err(StoreError::NotFound("tenant")) };
                    let mut profile = crate::tenant::TenantProfile::from_stored(stored.0);
                    change(&mut profile);
                    Some(profile)
                }
                None => None,
            };
            // The events column follows the webhook in the profile (see `store::notices`).
            let events = profile
                .as_ref()
                .map(|p| crate::store::notices::events_column(&p.webhook_events()));
            sqlx::query(
                "UPDATE tenants SET name = COALESCE($1, name), profile = COALESCE($2, profile), \
                 webhook_events = COALESCE($4, webhook_events) WHERE id = $3",
            )
            .bind(name)
            .bind(profile.map(|p| sqlx::types::Json(p.to_stored())))
            .bind(tenant.0)
            .bind(events)
            .execute(&mut *conn)
            .await?;
            tenant_profile(conn, tenant).await
        }

        async fn set_password(
            conn: &mut Conn,
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

        async fn set_platform_admin(conn: &mut Conn, user: UserId, on: bool) -> Result<(), StoreError> {
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

        async fn create_password_reset(
            conn: &mut Conn,
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
        async fn password_reset(
            conn: &mut Conn,
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

        async fn all_tenants(conn: &mut Conn) -> Result<Vec<crate::store::TenantSummary>, StoreError> {
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
        async fn tenant_status(conn: &mut Conn, tenant: TenantId) -> Result<crate::store::TenantStatus, StoreError> {
            let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
                .bind(tenant.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("tenant"))?;
            crate::store::stored_enum(status)
        }

        async fn set_tenant_active(
            conn: &mut Conn,
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

        async fn create_tenant(
            conn: &mut Conn,
            name: &str,
            now: DateTime<Utc>,
        ) -> Result<Tenant, StoreError> {
            let tenant = Tenant { id: TenantId::new(), name: name.to_owned(), created_at: now };
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(tenant.id.0)
                .bind(&tenant.name)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Ok(tenant)
        }

        async fn audit(
            conn: &mut Conn,
            tenant: TenantId,
            entry: AuditEntry,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_log (id, tenant_id, actor, action, resource_type, resource_id, ip, details, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.resource_type)
            .bind(entry.resource_id.as_deref())
            .bind(entry.ip.as_deref())
            .bind(Json(&entry.details))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn audit_log(
            conn: &mut Conn,
            tenant: TenantId,
            limit: u32,
        ) -> Result<Vec<AuditRecord>, StoreError> {
            let rows = sqlx::query(
                "SELECT id, actor, action, resource_type, resource_id, ip, details, created_at FROM audit_log \
                 WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(tenant.0)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(AuditRecord {
                        id: row.try_get("id")?,
                        entry: AuditEntry {
                            actor: row.try_get("actor")?,
                            action: row.try_get("action")?,
                            resource_type: row.try_get("resource_type")?,
                            resource_id: row.try_get("resource_id")?,
                            ip: row.try_get("ip")?,
                            details: row.try_get::<Json<serde_json::Value>, _>("details")?.0,
                        },
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect()
        }
        crate::store::backend::store_impl! { AccountStore for $store;
            write register(
                sys: &SystemScope,
                email: &str,
                password_hash: &str,
                tenant_name: &str,
                verification: Option<PendingVerification>,
            ) -> (Tenant, User) = own(email, password_hash, tenant_name) |c, ()| async move {
                    register(c, &email, &password_hash, &tenant_name, verification.as_ref(), Utc::now()).await
                };
            write renew_email_verification(sys: &SystemScope, user: UserId, verification: PendingVerification)
                -> bool = |c, ()| async move {
                    renew_email_verification(c, user, &verification, Utc::now()).await
                };
            write confirm_email(sys: &SystemScope, token_hash: Vec<u8>) -> Option<UserId>
                = |c, ()| async move { confirm_email(c, &token_hash, Utc::now()).await };
            write email_confirmed_by_reset(sys: &SystemScope, user: UserId) -> ()
                = |c, ()| email_confirmed_by_reset(c, user);
            read email_unconfirmed(sys: &SystemScope, user: UserId) -> bool
                = |c, ()| email_unconfirmed(c, user);
            write create_tenant(sys: &SystemScope, name: &str) -> Tenant
                = own(name) |c, ()| async move { create_tenant(c, &name, Utc::now()).await };
            read credentials(sys: &SystemScope, email: &str) -> Option<Credentials>
                = own(email) |c, ()| async move { credentials(c, &email).await };
            read user(sys: &SystemScope, id: UserId) -> User = |c, ()| user(c, id);
            read memberships(sys: &SystemScope, user: UserId) -> Vec<(TenantId, Role)>
                = |c, ()| memberships(c, user);
            write create_refresh(sys: &SystemScope, token: NewRefresh) -> ()
                = |c, ()| async move { create_refresh(c, &token, Utc::now()).await };
            write use_refresh(sys: &SystemScope, token_hash: Vec<u8>, next: NewRefresh)
                -> RefreshUse = |c, ()| async move {
                    use_refresh(c, &token_hash, &next, Utc::now()).await
                };
            write revoke_session(sys: &SystemScope, family: uuid::Uuid) -> ()
                = |c, ()| revoke_family(c, family, Utc::now());
            read signing_keys(sys: &SystemScope) -> Vec<SigningKeyRecord> = |c, ()| signing_keys(c);
            write remember_revocation(sys: &SystemScope, session: Uuid, until: i64, now: i64) -> ()
                = |c, ()| remember_revocation(c, session, until, now);
            read revoked_sessions(sys: &SystemScope, now: i64) -> Vec<(Uuid, i64)>
                = |c, ()| revoked_sessions(c, now);
            write seal_signing_key(sys: &SystemScope, kid: String, plain: Vec<u8>, sealed: Vec<u8>) -> ()
                = |c, ()| async move { seal_signing_key(c, &kid, &plain, &sealed).await };
            write add_signing_key(sys: &SystemScope, key: SigningKeyRecord) -> ()
                = |c, ()| async move { add_signing_key(c, &key).await };
            read tenant_profile(scope: &TenantScope) -> (Tenant, crate::tenant::TenantProfile)
                = |c, t| tenant_profile(c, t);
            write update_tenant_profile(
                scope: &TenantScope,
                name: Option<String>,
                change: Option<crate::store::accounts::ProfileChange>,
            ) -> (Tenant, crate::tenant::TenantProfile)
                = |c, tenant| update_tenant_profile(c, tenant, name, change);
            write set_password(sys: &SystemScope, user: UserId, password_hash: &str)
                -> Vec<uuid::Uuid> = own(password_hash) |c, ()| async move {
                    set_password(c, user, &password_hash, Utc::now()).await
                };
            write set_platform_admin(sys: &SystemScope, user: UserId, on: bool) -> ()
                = |c, ()| set_platform_admin(c, user, on);
            read all_tenants(sys: &SystemScope) -> Vec<TenantSummary> = |c, ()| all_tenants(c);
            read tenant_status(sys: &SystemScope, tenant: TenantId) -> crate::store::TenantStatus
                = |c, ()| tenant_status(c, tenant);
            write set_tenant_active(sys: &SystemScope, tenant: TenantId, active: bool)
                -> Vec<uuid::Uuid> = |c, ()| set_tenant_active(c, tenant, active, Utc::now());
            write create_password_reset(
                sys: &SystemScope,
                user: UserId,
                token_hash: Vec<u8>,
                expires_at: DateTime<Utc>,
            ) -> () = |c, ()| async move {
                    create_password_reset(c, user, &token_hash, expires_at, Utc::now()).await
                };
            write audit(scope: &TenantScope, entry: AuditEntry) -> ()
                = |c, tenant| audit(c, tenant, entry, Utc::now());
            read audit_log(scope: &TenantScope, limit: u32) -> Vec<AuditRecord>
                = |c, t| audit_log(c, t, limit);
            {
                async fn password_reset(
                    &self,
                    sys: &SystemScope,
                    token_hash: Vec<u8>,
                    consume: bool,
                ) -> Result<Option<UserId>, StoreError> {
                    if !consume {
                        return self.read(sys, move |c, ()| {
                            async move { password_reset(c, &token_hash, false, Utc::now()).await }.boxed()
                        })
                        .await;
                    }
                    self.write(sys, move |c, ()| {
                        async move { password_reset(c, &token_hash, true, Utc::now()).await }.boxed()
                    })
                    .await
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
