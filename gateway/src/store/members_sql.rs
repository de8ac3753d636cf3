//! Members and invitations SQL shared by both backends (see `ops.rs` for the conventions).
//! Listing members reads e-mails from `users`, which only the worker role may read on
//! PostgreSQL; those queries always filter by the tenant explicitly.

macro_rules! member_ops {
    ($conn:ty, $row:ty) => {
        use chrono::{DateTime, Utc};
        use coach_connector_api::TenantId;
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::accounts::{ApiKeyRecord, Invite, MemberRecord, Role, UserId};
        use crate::store::StoreError;

        pub(super) async fn members(conn: &mut $conn, tenant: TenantId) -> Result<Vec<MemberRecord>, StoreError> {
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

        async fn owners(conn: &mut $conn, tenant: TenantId) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'")
                .bind(tenant.0)
                .fetch_one(&mut *conn)
                .await?)
        }

        async fn role_of(conn: &mut $conn, tenant: TenantId, user: UserId) -> Result<Role, StoreError> {
            let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.0)
                .bind(user.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("member"))?;
            role.parse().map_err(StoreError::Corrupt)
        }

        /// End the user's sessions in this tenant; returns them.
        async fn end_sessions(conn: &mut $conn, tenant: TenantId, user: UserId, now: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
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
        pub(super) async fn set_role(
            conn: &mut $conn,
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
        pub(super) async fn remove_member(
            conn: &mut $conn,
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
            end_sessions(conn, tenant, user, now).await
        }

        pub(super) async fn create_invite(conn: &mut $conn, invite: &Invite, token_hash: &[u8]) -> Result<(), StoreError> {
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

        /// A pending, unexpired invitation by its token hash.
        pub(super) async fn invite(conn: &mut $conn, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<Invite>, StoreError> {
            let row = sqlx::query(
                "SELECT id, tenant_id, email, role, invited_by, expires_at, created_at FROM invites \
                 WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|row| {
                let role: String = row.try_get("role")?;
                Ok(Invite {
                    id: row.try_get("id")?,
                    tenant_id: TenantId(row.try_get("tenant_id")?),
                    email: row.try_get("email")?,
                    role: role.parse().map_err(StoreError::Corrupt)?,
                    invited_by: row.try_get::<Option<Uuid>, _>("invited_by")?.map(UserId),
                    expires_at: row.try_get("expires_at")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .transpose()
        }

        /// Accept an invitation once: the existing user `user`, or a new user with
        /// `new_password_hash`, becomes a member with the invited role.
        pub(super) async fn accept_invite(
            conn: &mut $conn,
            invite: &Invite,
            user: Option<UserId>,
            new_password_hash: Option<&str>,
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
                    id
                }
                (None, None) => return Err(StoreError::Conflict("a new member needs a password".into())),
            };
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(invite.tenant_id.0)
            .bind(user.0)
            .bind(invite.role.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(user)
        }
        fn api_key_from_row(row: &$row) -> Result<ApiKeyRecord, StoreError> {
            let role: String = row.try_get("role")?;
            Ok(ApiKeyRecord {
                id: row.try_get("id")?,
                tenant_id: TenantId(row.try_get("tenant_id")?),
                name: row.try_get("name")?,
                prefix: row.try_get("prefix")?,
                role: role.parse().map_err(StoreError::Corrupt)?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        const API_KEY_COLUMNS: &str = "id, tenant_id, name, prefix, role, created_at, revoked_at";

        pub(super) async fn create_api_key(
            conn: &mut $conn,
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

        pub(super) async fn api_keys(conn: &mut $conn, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
            let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id");
            let rows = sqlx::query(&sql).bind(tenant.0).fetch_all(&mut *conn).await?;
            rows.iter().map(api_key_from_row).collect()
        }

        /// A key that has not been revoked, by the hash of its secret.
        pub(super) async fn api_key_by_hash(conn: &mut $conn, key_hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
            let sql = format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
                 AND tenant_id IN (SELECT id FROM tenants WHERE status = 'active')"
            );
            let row = sqlx::query(&sql).bind(key_hash).fetch_optional(&mut *conn).await?;
            row.as_ref().map(api_key_from_row).transpose()
        }

        pub(super) async fn revoke_api_key(conn: &mut $conn, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
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
    };
}

pub(crate) use member_ops;
