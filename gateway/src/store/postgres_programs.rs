//! [`ProgramStore`] on PostgreSQL: each call one transaction under the tenant's row-level security.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ContactId, ConversationId};

use super::PostgresStore;
use crate::programs::definition::Definition;
use crate::store::StoreError;
use crate::store::programs::{
    EnrollOutcome, Enrollment, LastRun, NewEnrollment, ProgramRecord, ProgramStore, RunFact,
    StepContext, StepOutcome, StepRun,
};
use crate::tenancy::TenantScope;

mod audience_sql {
    crate::store::programs_audience_sql::program_audience_ops!(
        sqlx::postgres::PgConnection,
        sqlx::postgres::PgRow
    );
}

mod sql {
    crate::store::programs_sql::program_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

/// One tenant transaction around `$call`, committed when it succeeded.
macro_rules! write_tx {
    ($self:ident, $scope:ident, |$tx:ident| $call:expr) => {{
        let mut $tx = $self.tenant_tx($scope).await?;
        let out = $call.await?;
        $tx.commit().await?;
        Ok(out)
    }};
}

#[async_trait]
impl ProgramStore for PostgresStore {
    async fn create_program(
        &self,
        scope: &TenantScope,
        definition: Definition,
    ) -> Result<ProgramRecord, StoreError> {
        write_tx!(self, scope, |tx| sql::create_program(
            &mut tx,
            scope.tenant_id(),
            definition,
            Utc::now()
        ))
    }
    async fn update_program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        definition: Definition,
    ) -> Result<ProgramRecord, StoreError> {
        write_tx!(self, scope, |tx| sql::update_program(
            &mut tx,
            scope.tenant_id(),
            id,
            definition,
            Utc::now()
        ))
    }
    async fn programs(&self, scope: &TenantScope) -> Result<Vec<ProgramRecord>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::programs(&mut tx, scope.tenant_id()).await
    }
    async fn program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<ProgramRecord, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::program(&mut tx, scope.tenant_id(), id).await
    }
    async fn program_version(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        version: i32,
    ) -> Result<Definition, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::program_version(&mut tx, scope.tenant_id(), id, version).await
    }
    async fn archive_program(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<u64, StoreError> {
        write_tx!(self, scope, |tx| sql::archive_program(
            &mut tx,
            scope.tenant_id(),
            id,
            Utc::now()
        ))
    }
    async fn enroll(
        &self,
        scope: &TenantScope,
        new: Vec<NewEnrollment>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EnrollOutcome>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            out.push(sql::enroll(&mut tx, scope.tenant_id(), n, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }
    async fn enrollment(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<Enrollment, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::enrollment(&mut tx, scope.tenant_id(), id).await
    }
    async fn enrollments(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Enrollment>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::enrollments(&mut tx, scope.tenant_id(), program, after, limit).await
    }
    async fn step_context(
        &self,
        scope: &TenantScope,
        enrollment: uuid::Uuid,
    ) -> Result<Option<StepContext>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::step_context(&mut tx, scope.tenant_id(), enrollment).await
    }
    async fn cancel_enrollment(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
    ) -> Result<Enrollment, StoreError> {
        write_tx!(self, scope, |tx| sql::cancel_enrollment(
            &mut tx,
            scope.tenant_id(),
            id,
            Utc::now()
        ))
    }
    async fn record_step(
        &self,
        scope: &TenantScope,
        run: StepRun,
        now: DateTime<Utc>,
    ) -> Result<StepOutcome, StoreError> {
        write_tx!(self, scope, |tx| sql::record_step(
            &mut tx,
            scope.tenant_id(),
            run,
            now
        ))
    }
    async fn last_run(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<LastRun>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::last_run(&mut tx, scope.tenant_id(), conversation).await
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
        write_tx!(self, scope, |tx| sql::record_reply(
            &mut tx,
            scope.tenant_id(),
            enrollment,
            seq,
            reply,
            at,
            branch
        ))
    }
    async fn opt_out(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        write_tx!(self, scope, |tx| audience_sql::opt_out(
            &mut tx,
            scope.tenant_id(),
            contact,
            source,
            at
        ))
    }
    async fn opt_in(&self, scope: &TenantScope, contact: ContactId) -> Result<bool, StoreError> {
        write_tx!(self, scope, |tx| audience_sql::opt_in(
            &mut tx,
            scope.tenant_id(),
            contact
        ))
    }
    async fn opted_out(
        &self,
        scope: &TenantScope,
        contact: ContactId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        sql::opted_out(&mut tx, scope.tenant_id(), contact).await
    }
    async fn reach(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        channel: Option<ChannelId>,
    ) -> Result<Option<ConversationId>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        audience_sql::reach(&mut tx, scope.tenant_id(), contact, channel).await
    }
    async fn segment(
        &self,
        scope: &TenantScope,
        channel: Option<ChannelId>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<(ContactId, ConversationId)>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        audience_sql::segment(&mut tx, scope.tenant_id(), channel, since, limit).await
    }
    async fn enrollment_counts(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        audience_sql::enrollment_counts(&mut tx, scope.tenant_id(), program).await
    }
    async fn run_facts(
        &self,
        scope: &TenantScope,
        program: uuid::Uuid,
    ) -> Result<Vec<RunFact>, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        audience_sql::run_facts(&mut tx, scope.tenant_id(), program).await
    }
}
