//! Sessions (refresh-token families, revoked sessions) and token signing keys: the part of the
//! accounts SQL read before a tenant is known (login, refresh, token verification), expanded
//! inside the accounts impl of `sql.rs` for both backends.

macro_rules! session_ops {
    () => {
        async fn create_refresh(
            conn: &mut Conn,
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
        async fn use_refresh(
            conn: &mut Conn,
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

        async fn revoke_family(
            conn: &mut Conn,
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

        async fn signing_keys(conn: &mut Conn) -> Result<Vec<SigningKeyRecord>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT kid, private_der, public_raw, created_at FROM signing_keys ORDER BY created_at DESC, kid",
            )
            .fetch_all(&mut *conn)
            .await?)
        }

        async fn remember_revocation(conn: &mut Conn, session: Uuid, until: i64, now: i64) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM revoked_sessions WHERE until <= $1").bind(now).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO revoked_sessions (session_id, until) VALUES ($1, $2) \
                 ON CONFLICT (session_id) DO UPDATE SET until = excluded.until",
            )
            .bind(session)
            .bind(until)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn revoked_sessions(conn: &mut Conn, now: i64) -> Result<Vec<(Uuid, i64)>, StoreError> {
            Ok(sqlx::query_as("SELECT session_id, until FROM revoked_sessions WHERE until > $1")
                .bind(now)
                .fetch_all(&mut *conn)
                .await?)
        }

        async fn seal_signing_key(conn: &mut Conn, kid: &str, plain: &[u8], sealed: &[u8]) -> Result<(), StoreError> {
            sqlx::query("UPDATE signing_keys SET private_der = $3 WHERE kid = $1 AND private_der = $2")
                .bind(kid)
                .bind(plain)
                .bind(sealed)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn add_signing_key(conn: &mut Conn, key: &SigningKeyRecord) -> Result<(), StoreError> {
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
    };
}

pub(in crate::store) use session_ops;
