//! Caps on long-lived connections (widget sockets, event streams), counted in this process
//! under two keys: who connects (an address, a member) and what they connect to (a channel, a
//! tenant). A [`Permit`] holds one place under both and gives it back when dropped, so a
//! connection that ends in any way (closed, cut, panicked) is no longer counted.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Open connections by client key `A` and by target key `B`, with a cap on each.
pub struct Caps<A, B> {
    open: Mutex<(HashMap<A, u32>, HashMap<B, u32>)>,
    per_client: u32,
    per_target: u32,
}

/// Which cap a connection would go over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// The client's ([`Caps::per_client`]).
    Client(u32),
    /// The target's.
    Target(u32),
}

/// One admitted connection's place in the counts.
pub struct Permit<A: Hash + Eq, B: Hash + Eq> {
    caps: Arc<Caps<A, B>>,
    client: A,
    target: B,
}

impl<A: Hash + Eq + Clone, B: Hash + Eq + Clone> Caps<A, B> {
    /// At most `per_client` connections of one client and `per_target` to one target.
    pub fn new(per_client: u32, per_target: u32) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::default(),
            per_client,
            per_target,
        })
    }

    /// The client cap.
    pub fn per_client(&self) -> u32 {
        self.per_client
    }

    /// Counts a new connection of `client` to `target`, or says which cap it is over.
    pub fn admit(self: &Arc<Self>, client: A, target: B) -> Result<Permit<A, B>, Over> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0.get(&client).copied().unwrap_or(0) >= self.per_client {
            return Err(Over::Client(self.per_client));
        }
        if open.1.get(&target).copied().unwrap_or(0) >= self.per_target {
            return Err(Over::Target(self.per_target));
        }
        *open.0.entry(client.clone()).or_default() += 1;
        *open.1.entry(target.clone()).or_default() += 1;
        Ok(Permit {
            caps: self.clone(),
            client,
            target,
        })
    }
}

impl<A: Hash + Eq, B: Hash + Eq> Drop for Permit<A, B> {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|e| e.into_inner());
        let (clients, targets) = &mut *open;
        release(clients, &self.client);
        release(targets, &self.target);
    }
}

/// One connection fewer under `key` (the entry goes at zero, so the maps hold only open ones).
fn release<K: Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_caps_hold_and_a_dropped_permit_frees_its_place() {
        let caps = Caps::<&str, u8>::new(2, 3);
        let a1 = caps.admit("a", 1).unwrap();
        let _a2 = caps.admit("a", 1).unwrap();
        assert_eq!(caps.admit("a", 2).err(), Some(Over::Client(2)));
        let _b = caps.admit("b", 1).unwrap();
        assert_eq!(caps.admit("c", 1).err(), Some(Over::Target(3)));
        assert!(caps.admit("c", 2).is_ok(), "another target has room");
        drop(a1);
        assert!(
            caps.admit("c", 1).is_ok(),
            "the dropped one's place is free"
        );
        let open = caps.open.lock().unwrap();
        assert!(!open.0.contains_key("c"), "counts at zero are removed");
    }
}
