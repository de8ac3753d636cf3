//! One way to run a store call on either backend, so each aggregate writes its SQL and its trait
//! impl once.
//!
//! An aggregate's `sql.rs` defines a macro holding its SQL functions and its trait impl, written
//! against [`Backend::read`] / [`Backend::write`] and the [`Conn`] of the backend it is given,
//! and instantiates it for both backends with [`for_each_backend!`]. The backends implement
//! `read` and `write` once: SQLite reads from its pool and writes through its single writer
//! (group commit); PostgreSQL runs both in a transaction under the tenant's row-level security
//! (or the worker role for system work), committing writes.
//!
//! Placeholders are `$N`: PostgreSQL reads them natively and sqlx's SQLite driver binds `$N` to
//! the N-th argument, so the same text binds the same values on both. Typed NULLs are written
//! `CAST(NULL AS type)`, which both accept. Where the dialects differ (the function for "largest
//! of", the row lock taken when claiming, a timestamp's day, full-text search), the difference is
//! a constant of [`Backend`].

use coach_connector_api::TenantId;
use futures::future::BoxFuture;

use super::StoreError;
use crate::tenancy::{SystemScope, TenantScope};

/// The connection a backend's SQL runs on.
pub(crate) type Conn<B> = <<B as Backend>::Db as sqlx::Database>::Connection;

/// The rows a backend's SQL returns.
pub(crate) type Row<B> = <<B as Backend>::Db as sqlx::Database>::Row;

/// A store call's work: SQL on a connection, given what the scope allows (a tenant's id, or
/// nothing for system work).
pub(crate) trait Work<C, K, T>:
    for<'c> FnOnce(&'c mut C, K) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static
{
}

impl<C, K, T, F> Work<C, K, T> for F where
    F: for<'c> FnOnce(&'c mut C, K) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static
{
}

/// Who a store call acts for.
pub(crate) trait Scoped: Sync {
    /// What the SQL is given: the tenant's id ([`TenantScope`]) or `()` ([`SystemScope`]).
    type Key: Copy + Send + 'static;
    /// That key.
    fn key(&self) -> Self::Key;
    /// The tenant whose rows the call may see, or `None` for every tenant.
    fn tenant(&self) -> Option<TenantId>;
}

impl Scoped for TenantScope {
    type Key = TenantId;
    fn key(&self) -> TenantId {
        self.tenant_id()
    }
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant_id())
    }
}

impl Scoped for SystemScope {
    type Key = ();
    fn key(&self) {}
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// What a backend provides to the shared SQL.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The sqlx database.
    type Db: sqlx::Database;
    /// The SQL function for "largest of" (`GREATEST` / `MAX`).
    const GREATEST: &'static str;
    /// The row lock a claim takes (`FOR UPDATE SKIP LOCKED`; nothing on SQLite's one writer).
    const CLAIM_LOCK: &'static str;
    /// The row lock a read-modify-write takes (`FOR UPDATE`; nothing on SQLite's one writer).
    const ROW_LOCK: &'static str;
    /// The lock an existence check takes so a row being deleted meanwhile is waited for and
    /// then not found, instead of failing a foreign key later (`FOR KEY SHARE`; nothing on
    /// SQLite's one writer).
    const KEY_SHARE: &'static str;
    /// A statement that makes event-log writers take turns until their transaction ends, so
    /// rows become visible in `seq` order (an advisory lock; nothing on SQLite's one writer).
    const EVENT_LOG_TURN: &'static str;
    /// The expression for `created_at`'s UTC day as `YYYY-MM-DD`.
    const UTC_DAY: &'static str;
    /// A query of the ids of the conversations of tenant `$tenant` with a message matching the
    /// full-text search `$query` (given as [`Backend::search_query`] makes it; both stand for
    /// the placeholders [`ConversationFilter::sql`](super::ConversationFilter::sql) gives them):
    /// FTS5 on SQLite, `tsvector` on PostgreSQL (migration 0019).
    const MESSAGE_SEARCH: &'static str;
    /// The search in the form [`Backend::MESSAGE_SEARCH`] takes.
    fn search_query(search: &crate::store::SearchText) -> String;

    /// Run `work` reading what `scope` may see.
    async fn read<S: Scoped, T: Send + 'static>(
        &self,
        scope: &S,
        work: impl Work<Conn<Self>, S::Key, T>,
    ) -> Result<T, StoreError>;

    /// Called after an erasure committed: make the erased rows unreadable in the files too
    /// (SQLite: the WAL is checkpointed and truncated; freed pages are zeroed by
    /// `secure_delete`). PostgreSQL's dead tuples are reclaimed by its vacuum.
    async fn after_erasure(&self) {}

    /// Run `work` in one transaction; `Ok` means committed, an error leaves nothing behind.
    async fn write<S: Scoped, T: Send + 'static>(
        &self,
        scope: &S,
        work: impl Work<Conn<Self>, S::Key, T>,
    ) -> Result<T, StoreError>;
}

/// Instantiate an aggregate's SQL macro once per backend, in modules `sqlite` and `postgres`.
macro_rules! for_each_backend {
    ($ops:ident) => {
        pub(in crate::store) mod sqlite {
            $ops!(crate::store::SqliteStore, sqlite);
        }
        pub(in crate::store) mod postgres {
            $ops!(crate::store::PostgresStore, postgres);
        }
    };
}

pub(crate) use for_each_backend;

/// An aggregate trait's impl for one backend, one line per method: its signature after the
/// scope, whether it reads or writes, and the SQL function it runs with the connection and the
/// scope's key (the tenant's id, or `()` for system work):
///
/// ```text
/// store_impl! { ConsoleStore for $store;
///     read inbox(scope: &TenantScope, user: Uuid, limit: u32) -> Vec<InboxItem>
///         = |c, t| inbox(c, t, user, limit);
/// }
/// ```
///
/// `= own(name) |c, ()| ..` first makes an owned copy of a borrowed argument (`&str`) for the
/// work to move. Methods that do more than one call go in a trailing `{ .. }` block, written out.
macro_rules! store_impl {
    (
        $trait:ident for $store:ty;
        $(
            $mode:ident $name:ident ( $scope:ident : &$scope_ty:ty $(, $arg:ident : $ty:ty)* $(,)? )
                -> $ret:ty = $(own($($own:ident),+))? |$c:ident, $key:pat_param| $body:expr;
        )*
        $({ $($extra:tt)* })?
    ) => {
        #[async_trait::async_trait]
        impl $trait for $store {
            $(
                async fn $name(
                    &self,
                    $scope: &$scope_ty,
                    $($arg: $ty),*
                ) -> Result<$ret, crate::store::StoreError> {
                    $($(let $own = $own.to_owned();)+)?
                    crate::store::backend::Backend::$mode(self, $scope, move |$c, $key| {
                        futures::FutureExt::boxed($body)
                    })
                    .await
                }
            )*
            $($($extra)*)?
        }
    };
}

pub(crate) use store_impl;
