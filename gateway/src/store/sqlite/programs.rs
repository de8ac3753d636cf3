//! [`ProgramStore`] on SQLite: reads from the pool, writes through the single writer (each
//! call one savepoint, so a failed call leaves nothing behind).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ContactId, ConversationId};
use futures::FutureExt;

use super::SqliteStore;
use crate::programs::definition::Definition;
use crate::store::StoreError;
use crate::store::programs::{
    EnrollOutcome, Enrollment, LastRun, NewEnrollment, ProgramRecord, ProgramStore, RunFact,
    StepContext, StepOutcome, StepRun,
};
use crate::tenancy::TenantScope;

mod audience_sql {
    crate::store::programs_audience_sql::program_audience_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

mod sql {
    crate::store::programs_sql::program_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

#[async_trait]
impl ProgramStore for SqliteStore {
    async fn create_program(
        &self,
        scope: &TenantScope,
        definition: Definition,
    ) -> Result<ProgramRecord, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::create_program(c, tenant, definition, Utc::now()).boxed())
            .await
    }
    async fn update_program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        definition: Definition,
    ) -> Result<ProgramRecord, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::update_program(c, tenant, id, definition, Utc::now()).boxed())
            .await
    }
    async fn programs(&self, scope: &TenantScope) -> Result<Vec<ProgramRecord>, StoreError> {
        sql::programs(&mut *self.reader().await?, scope.tenant_id()).await
    }
    async fn program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<ProgramRecord, StoreError> {
        sql::program(&mut *self.reader().await?, scope.tenant_id(), id).await
    }
    async fn program_version(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        version: i32,
    ) -> Result<Definition, StoreError> {
        sql::program_version(&mut *self.reader().await?, scope.tenant_id(), id, version).await
    }
    async fn archive_program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<u64, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::archive_program(c, tenant, id, Utc::now()).boxed())
            .await
    }
    async fn enroll(
        &self,
        scope: &TenantScope,
        new: Vec<NewEnrollment>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EnrollOutcome>, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| {
                async move {
                    let mut out = Vec::with_capacity(new.len());
                    for n in new {
                        out.push(sql::enroll(&mut *c, tenant, n, now).await?);
                    }
                    Ok(out)
                }
                .boxed()
            })
            .await
    }
    async fn enrollment(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<Enrollment, StoreError> {
        sql::enrollment(&mut *self.reader().await?, scope.tenant_id(), id).await
    }
    async fn enrollments(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Enrollment>, StoreError> {
        sql::enrollments(
            &mut *self.reader().await?,
            scope.tenant_id(),
            program,
            after,
            limit,
        )
        .await
    }
    async fn step_context(
        &self,
        scope: &TenantScope,
        enrollment: uuid::Uuid,
    ) -> Result<Option<StepContext>, StoreError> {
        sql::step_context(&mut *self.reader().await?, scope.tenant_id(), enrollment).await
    }
    async fn cancel_enrollment(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<Enrollment, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::cancel_enrollment(c, tenant, id, Utc::now()).boxed())
            .await
    }
    async fn record_step(
        &self,
        scope: &TenantScope,
        run: StepRun,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::record_step(c, tenant, run, now).boxed())
            .await
    }
    async fn last_run(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<LastRun>, StoreError> {
        sql::last_run(&mut *self.reader().await?, scope.tenant_id(), conversation).await
    }
    async fn record_reply(
        &self,
        scope: &TenantScope,
        enrollment: uuid::Uuid,
        seq: i32,
        reply: String,
        at: DateTime<Utc>,
        branch: Option<(String, DateTime<Utc>)>,
    ) -> Result<bool, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| {
                sql::record_reply(c, tenant, enrollment, seq, reply, at, branch).boxed()
            })
            .await
    }
    async fn opt_out(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let tenant = scope.tenant_id();
        let source = source.to_owned();
        self.writer
            .write(move |c| {
                async move { audience_sql::opt_out(c, tenant, contact, &source, at).await }.boxed()
            })
            .await
    }
    async fn opt_in(&self, scope: &TenantScope, contact: ContactId) -> Result<bool, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| audience_sql::opt_in(c, tenant, contact).boxed())
            .await
    }
    async fn opted_out(
        &self,
        scope: &TenantScope,
        contact: ContactId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        sql::opted_out(&mut *self.reader().await?, scope.tenant_id(), contact).await
    }
    async fn reach(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        channel: Option<ChannelId>,
    ) -> Result<Option<ConversationId>, StoreError> {
        audience_sql::reach(
            &mut *self.reader().await?,
            scope.tenant_id(),
            contact,
            channel,
        )
        .await
    }
    async fn segment(
        &self,
        scope: &TenantScope,
        channel: Option<ChannelId>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<(ContactId, ConversationId)>, StoreError> {
        audience_sql::segment(
            &mut *self.reader().await?,
            scope.tenant_id(),
            channel,
            since,
            limit,
        )
        .await
    }
    async fn enrollment_counts(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        audience_sql::enrollment_counts(&mut *self.reader().await?, scope.tenant_id(), program)
            .await
    }
    async fn run_facts(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
    ) -> Result<Vec<RunFact>, StoreError> {
        audience_sql::run_facts(&mut *self.reader().await?, scope.tenant_id(), program).await
    }
}
