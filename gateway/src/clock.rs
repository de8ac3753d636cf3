//! The time proactive work runs on. Production reads the system clock; tests move a manual
//! clock through days of a program in moments, without sleeping.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// A clock: the system's, or a manual one that only moves when told.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A manual clock standing at `start`.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(t) => *t.lock().unwrap_or_else(PoisonError::into_inner),
            None => Utc::now(),
        }
    }

    /// Move a manual clock to `t` (never backwards); the system clock ignores this.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Some(m) = &self.manual {
            let mut now = m.lock().unwrap_or_else(PoisonError::into_inner);
            *now = (*now).max(t);
        }
    }

    /// Move a manual clock forward by `d`.
    pub fn advance(&self, d: chrono::Duration) {
        let t = self.now() + d;
        self.set(t);
    }
}
