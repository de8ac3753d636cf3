//! Tenancy as a type: every store call for tenant-owned data takes a [`TenantScope`], and work
//! that must see every tenant takes a [`SystemScope`] whose reason is logged.
//!
//! A `TenantScope` can only come from authentication (the creators' API) or be narrowed from a
//! `SystemScope` by background work that has established the tenant itself (a webhook whose
//! channel and signature identify the tenant, a job row that carries its tenant).

use coach_connector_api::TenantId;

/// Permission to read and write one tenant's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
    origin: Origin,
}

/// How a tenant scope came to be, for logs and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An authenticated request; the user's id and role travel with it.
    Request {
        /// The authenticated principal (user or API key id).
        principal: String,
    },
    /// Background work acting for one tenant.
    System {
        /// Why the work needs this tenant's data.
        reason: &'static str,
    },
}

impl TenantScope {
    /// The scope of an authenticated request. Only the authentication layer calls this.
    pub(crate) fn authenticated(tenant: TenantId, principal: String) -> Self {
        Self {
            tenant,
            origin: Origin::Request { principal },
        }
    }

    /// The tenant whose data this scope may touch.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// How this scope was obtained.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// Permission for background work to see every tenant (outbox and job workers, retention,
/// tenant creation). Each construction is logged with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemScope {
    reason: &'static str,
}

impl SystemScope {
    /// A system scope for `reason` (a short static phrase such as `"outbox worker"`).
    pub fn new(reason: &'static str) -> Self {
        tracing::debug!(reason, "system scope opened");
        Self { reason }
    }

    /// Why this scope exists.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Narrow to one tenant, for work that has established which tenant it acts for.
    pub fn for_tenant(&self, tenant: TenantId) -> TenantScope {
        tracing::trace!(reason = self.reason, %tenant, "system scope narrowed to tenant");
        TenantScope {
            tenant,
            origin: Origin::System {
                reason: self.reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_carry_tenant_and_origin() {
        let t = TenantId::new();
        let s = SystemScope::new("test").for_tenant(t);
        assert_eq!(s.tenant_id(), t);
        assert_eq!(s.origin(), &Origin::System { reason: "test" });
        let r = TenantScope::authenticated(t, "user:1".into());
        assert!(matches!(r.origin(), Origin::Request { principal } if principal == "user:1"));
    }
}
