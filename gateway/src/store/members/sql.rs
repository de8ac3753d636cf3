//! Members SQL and the [`MemberStore`](super::MemberStore) impl, written once for both backends
//! (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use futures::FutureExt as _;

        use crate::store::backend::Backend as _;
        use crate::store::members::MemberStore;
        use crate::tenancy::{SystemScope, TenantScope};

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::TenantId;
        use sqlx::{FromRow as _, Row as _};
        use uuid::Uuid;

        use crate::store::accounts::{ApiKeyRecord, Invite, MemberRecord, Role, UserId};
        use crate::store::StoreError;

        async fn members(conn: &mut Conn, tenant: TenantId) -> Result<Vec<MemberRecord>, StoreError> {
            let rows = sqlx::query(
                "SELECT u.id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.tenant_id = $1 ORDER BY m.created_at, u.id",
            )
            .bind(tenant.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    let role: String = row.try_get("role")?;
                    Ok(MemberRecord {
                        user_id: UserId(row.try_get("id")?),
                        email: row.try_get("email")?,
                        role: role.parse().map_err(StoreError::Corrupt)?,
                        since: row.try_get("created_at")?,
                    })
                })
                .collect()
        }

        async fn owners(conn: &mut Conn, tenant: TenantId) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'")
                .bind(tenant.0)
                .fetch_one(&mut *conn)
                .await?)
        }

        async fn role_of(conn: &mut Conn, tenant: TenantId, user: UserId) -> Result<Role, StoreError> {
            let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.0)
                .bind(user.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("member"))?;
            role.parse().map_err(StoreError::Corrupt)
        }

        /// End the user's sessions in this tenant; returns them.
        async fn end_sessions(conn: &mut Conn, tenant: TenantId, user: UserId, now: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
            let families: Vec<Uuid> = sqlx::query_scalar(
                "SELECT DISTINCT family_id FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant.0)
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(tenant.0)
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            Ok(families)
        }

        /// Change a member's role (never leaving the tenant without an owner); ends their
        /// sessions in the tenant so the new role applies at once.
        async fn set_role(
            conn: &mut Conn,
            tenant: TenantId,
            user: UserId,
            role: Role,
            now: DateTime<Utc>,
        ) -> Result<Vec<Uuid>, StoreError> {
            let current = role_of(conn, tenant, user).await?;
            if current == role {
                // Nothing changes, so no session needs to end.
                return Ok(Vec::new());
            }
            if current == Role::Owner && role != Role::Owner && owners(conn, tenant).await? <= 1 {
                return Err(StoreError::Conflict("a tenant keeps at least one owner: make someone else owner first".into()));
            }
            sqlx::query("UPDATE memberships SET role = $1 WHERE tenant_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(tenant.0)
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            end_sessions(conn, tenant, user, now).await
        }

        /// Remove a member (never the last owner) and end their sessions in the tenant.
        async fn remove_member(
            conn: &mut Conn,
            tenant: TenantId,
            user: UserId,
            now: DateTime<Utc>,
        ) -> Result<Vec<Uuid>, StoreError> {
            if role_of(conn, tenant, user).await? == Role::Owner && owners(conn, tenant).await? <= 1 {
                return Err(StoreError::Conflict("a tenant keeps at least one owner".into()));
            }
            sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.0)
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            // Their pending invitations go with them.
            sqlx::query("DELETE FROM invites WHERE tenant_id = $1 AND invited_by = $2 AND accepted_at IS NULL")
                .bind(tenant.0)
                .bind(user.0)
                .execute(&mut *conn)
                .await?;
            end_sessions(conn, tenant, user, now).await
        }

        async fn create_invite(conn: &mut Conn, invite: &Invite, token_hash: &[u8]) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO invites (id, tenant_id, email, role, token_hash, invited_by, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(invite.id)
            .bind(invite.tenant_id.0)
            .bind(&invite.email)
            .bind(invite.role.as_str())
            .bind(token_hash)
            .bind(invite.invited_by.map(|u| u.0))
            .bind(invite.expires_at)
            .bind(invite.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        const INVITE_COLUMNS: &str = "id, tenant_id, email, role, invited_by, expires_at, created_at";

        /// A pending, unexpired invitation by its token hash.
        async fn invite(conn: &mut Conn, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<Invite>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2"
            ))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?)
        }

        /// The tenant's pending, unexpired invitations, newest first.
        async fn invites(conn: &mut Conn, tenant: TenantId, now: DateTime<Utc>) -> Result<Vec<Invite>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE tenant_id = $1 AND accepted_at IS NULL \
                 AND expires_at > $2 ORDER BY created_at DESC, id DESC"
            ))
            .bind(tenant.0)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?)
        }

        async fn revoke_invite(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
            let done = sqlx::query("DELETE FROM invites WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL")
                .bind(tenant.0)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("invitation"));
            }
            Ok(())
        }

        /// Accept an invitation once: the existing user `user`, or a new user with
        /// `new_password_hash`, becomes a member with the invited role. An existing member keeps
        /// the role they have: an invitation never promotes or demotes (the owner rules would be
        /// bypassed). A new user with `verification` has to confirm their address before logging in.
        async fn accept_invite(
            conn: &mut Conn,
            invite: &Invite,
            user: Option<UserId>,
            new_password_hash: Option<&str>,
            verification: Option<&crate::store::PendingVerification>,
            now: DateTime<Utc>,
        ) -> Result<UserId, StoreError> {
            let taken = sqlx::query("UPDATE invites SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL")
                .bind(now)
                .bind(invite.id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if taken == 0 {
                return Err(StoreError::Conflict("this invitation was already used".into()));
            }
            let user = match (user, new_password_hash) {
                (Some(user), _) => user,
                (None, Some(hash)) => {
                    let id = UserId(Uuid::now_v7());
                    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id.0)
                        .bind(&invite.email)
                        .bind(hash)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    if let Some(pending) = verification {
                        crate::store::accounts::sql::$backend::pending_verification(conn, id, pending, now).await?;
                    }
                    id
                }
                (None, None) => return Err(StoreError::Conflict("a new member needs a password".into())),
            };
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO NOTHING",
            )
            .bind(invite.tenant_id.0)
            .bind(user.0)
            .bind(invite.role.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(user)
        }

        const API_KEY_COLUMNS: &str = "id, tenant_id, name, prefix, role, created_at, revoked_at";

        async fn create_api_key(
            conn: &mut Conn,
            key: &ApiKeyRecord,
            key_hash: &[u8],
            created_by: Option<UserId>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key.id)
            .bind(key.tenant_id.0)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(key_hash)
            .bind(key.role.as_str())
            .bind(created_by.map(|u| u.0))
            .bind(key.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn api_keys(conn: &mut Conn, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
            let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id");
            let rows = sqlx::query(&sql).bind(tenant.0).fetch_all(&mut *conn).await?;
            rows.iter().map(|row| Ok(ApiKeyRecord::from_row(row)?)).collect()
        }

        /// A key that has not been revoked, by the hash of its secret.
        async fn api_key_by_hash(conn: &mut Conn, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
            let sql = format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
                 AND tenant_id IN (SELECT id FROM tenants WHERE status = 'active')"
            );
            let row = sqlx::query(&sql).bind(key_hash).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(ApiKeyRecord::from_row).transpose()?)
        }

        async fn revoke_api_key(conn: &mut Conn, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
            let n = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(tenant.0)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("API key"));
            }
            Ok(())
        }
        crate::store::backend::store_impl! { MemberStore for $store;
            write create_invite(scope: &TenantScope, invite: Invite, token_hash: Vec<u8>) -> ()
                = |c, _| async move { create_invite(c, &invite, &token_hash).await };
            read invites(scope: &TenantScope) -> Vec<Invite> = |c, t| invites(c, t, Utc::now());
            write revoke_invite(scope: &TenantScope, id: Uuid) -> ()
                = |c, t| revoke_invite(c, t, id);
            read invite(sys: &SystemScope, token_hash: Vec<u8>) -> Option<Invite>
                = |c, ()| async move { invite(c, &token_hash, Utc::now()).await };
            write accept_invite(
                sys: &SystemScope,
                invite: Invite,
                user: Option<UserId>,
                new_password_hash: Option<String>,
                verification: Option<crate::store::PendingVerification>,
            ) -> UserId = |c, ()| async move {
                    accept_invite(c, &invite, user, new_password_hash.as_deref(), verification.as_ref(), Utc::now()).await
                };
            write create_api_key(
                scope: &TenantScope,
                key: ApiKeyRecord,
                key_hash: Vec<u8>,
                created_by: Option<UserId>,
            ) -> () = |c, _| async move { create_api_key(c, &key, &key_hash, created_by).await };
            read api_keys(scope: &TenantScope) -> Vec<ApiKeyRecord> = |c, t| api_keys(c, t);
            read api_key_by_hash(sys: &SystemScope, key_hash: Vec<u8>) -> Option<ApiKeyRecord>
                = |c, ()| async move { api_key_by_hash(c, &key_hash).await };
            write revoke_api_key(scope: &TenantScope, id: Uuid) -> ()
                = |c, tenant| revoke_api_key(c, tenant, id, Utc::now());
            {
                async fn members(&self, scope: &TenantScope) -> Result<Vec<MemberRecord>, StoreError> {
                    let tenant = scope.tenant_id();
                    self.read(&SystemScope::new("list members"), move |c, ()| members(c, tenant).boxed())
                        .await
                }
                async fn set_role(
                    &self,
                    scope: &TenantScope,
                    user: UserId,
                    role: Role,
                ) -> Result<Vec<Uuid>, StoreError> {
                    let tenant = scope.tenant_id();
                    self.write(&SystemScope::new("change member role"), move |c, ()| {
                        set_role(c, tenant, user, role, Utc::now()).boxed()
                    })
                    .await
                }
                async fn remove_member(
                    &self,
                    scope: &TenantScope,
                    user: UserId,
                ) -> Result<Vec<Uuid>, StoreError> {
                    let tenant = scope.tenant_id();
                    self.write(&SystemScope::new("remove member"), move |c, ()| {
                        remove_member(c, tenant, user, Utc::now()).boxed()
                    })
                    .await
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
