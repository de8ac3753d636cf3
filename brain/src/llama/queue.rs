//! The generation queue: one FIFO per tenant, served round-robin, so a tenant with many waiting
//! requests cannot starve the others. Bounded overall and per tenant.

use std::collections::{HashMap, VecDeque};

use crate::Tenant;
use crate::model::ModelError;

/// Per-tenant FIFO queues served round-robin.
pub(crate) struct FairQueue<T> {
    queues: HashMap<Tenant, VecDeque<T>>,
    /// Tenants with waiting items, in serving order; a tenant is listed once, iff its queue is
    /// non-empty.
    ring: VecDeque<Tenant>,
    waiting: usize,
    max_total: usize,
    max_per_tenant: usize,
}

impl<T> FairQueue<T> {
    /// An empty queue holding at most `max_total` items, `max_per_tenant` of one tenant.
    pub(crate) fn new(max_total: usize, max_per_tenant: usize) -> Self {
        Self {
            queues: HashMap::new(),
            ring: VecDeque::new(),
            waiting: 0,
            max_total: max_total.max(1),
            max_per_tenant: max_per_tenant.max(1),
        }
    }

    /// Queues `item` behind the tenant's earlier ones; `Busy` beyond either limit.
    pub(crate) fn push(&mut self, tenant: Tenant, item: T) -> Result<(), ModelError> {
        if self.waiting >= self.max_total {
            return Err(ModelError::Busy(format!(
                "{} generations are already waiting; retry shortly",
                self.waiting
            )));
        }
        let queue = self.queues.entry(tenant).or_default();
        if queue.len() >= self.max_per_tenant {
            return Err(ModelError::Busy(format!(
                "this tenant already has {} generations waiting; retry shortly",
                queue.len()
            )));
        }
        if queue.is_empty() {
            self.ring.push_back(tenant);
        }
        queue.push_back(item);
        self.waiting += 1;
        Ok(())
    }

    /// The next item: the oldest of the tenant whose turn it is; that tenant then goes to the
    /// back of the line.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let tenant = self.ring.pop_front()?;
        let queue = self.queues.get_mut(&tenant)?;
        let item = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&tenant);
        } else {
            self.ring.push_back(tenant);
        }
        self.waiting -= 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn tenant() -> Tenant {
        Tenant::scoped(Uuid::new_v4())
    }

    fn drain(queue: &mut FairQueue<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| queue.pop()).collect()
    }

    #[test]
    fn tenants_take_turns_and_each_keeps_its_order() {
        let (a, b, c) = (tenant(), tenant(), tenant());
        let mut queue = FairQueue::new(100, 10);
        for item in ["a1", "a2", "a3"] {
            queue.push(a, item).unwrap();
        }
        queue.push(b, "b1").unwrap();
        queue.push(c, "c1").unwrap();
        queue.push(b, "b2").unwrap();
        assert_eq!(drain(&mut queue), ["a1", "b1", "c1", "a2", "b2", "a3"]);
    }

    #[test]
    fn a_late_tenant_is_served_before_the_busy_tenant_continues() {
        let (a, b) = (tenant(), tenant());
        let mut queue = FairQueue::new(100, 10);
        queue.push(a, "a1").unwrap();
        assert_eq!(queue.pop(), Some("a1"));
        queue.push(a, "a2").unwrap();
        queue.push(a, "a3").unwrap();
        queue.push(b, "b1").unwrap();
        assert_eq!(drain(&mut queue), ["a2", "b1", "a3"]);
    }

    #[test]
    fn limits_answer_busy() {
        let (a, b, c) = (tenant(), tenant(), tenant());
        let mut queue = FairQueue::new(3, 2);
        queue.push(a, "a1").unwrap();
        queue.push(a, "a2").unwrap();
        assert!(matches!(queue.push(a, "a3"), Err(ModelError::Busy(_))));
        queue.push(b, "b1").unwrap();
        assert!(matches!(queue.push(c, "c1"), Err(ModelError::Busy(_))));
        assert_eq!(queue.pop(), Some("a1"));
        queue.push(c, "c1").unwrap();
        assert_eq!(drain(&mut queue), ["b1", "a2", "c1"]);
        assert_eq!(queue.pop(), None);
    }
}
