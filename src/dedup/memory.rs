//! The embedded store: one process, bounded by `max_entries`, expiring by TTL.
//!
//! A `HashMap` holds the state; two queues (leases, deliveries) hold expiry times in
//! insertion order. All leases share one duration and all deliveries another, so each
//! queue is ordered by expiry and cleaning is popping from the front. When the map is full,
//! the oldest delivered ids are forgotten first (a later duplicate may then be forwarded
//! again, which the upstream's idempotency absorbs); refusing new deliveries instead would
//! turn a full table into an outage.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{DedupStore, Reservation, StoreError, StoreFuture, Token};

#[derive(Debug, Clone, Copy)]
enum Slot {
    InFlight { token: Token, until: Instant },
    Delivered { until: Instant },
}

impl Slot {
    fn until(&self) -> Instant {
        match self {
            Slot::InFlight { until, .. } | Slot::Delivered { until } => *until,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<Box<str>, Slot>,
    leases: VecDeque<(Instant, Box<str>)>,
    delivered: VecDeque<(Instant, Box<str>)>,
}

impl Inner {
    /// Drops every entry whose time has passed.
    fn expire(&mut self, now: Instant) {
        for queue in [&mut self.leases, &mut self.delivered] {
            while let Some((until, _)) = queue.front() {
                if *until > now {
                    break;
                }
                if let Some((until, key)) = queue.pop_front() {
                    // The queue may hold stale records for keys that moved on.
                    if self.slots.get(&key).is_some_and(|s| s.until() == until) {
                        self.slots.remove(&key);
                    }
                }
            }
        }
    }

    /// Makes room for one entry by forgetting the oldest delivered ids.
    fn make_room(&mut self, max_entries: usize) {
        while self.slots.len() >= max_entries {
            let Some((until, key)) = self.delivered.pop_front() else {
                break;
            };
            if self.slots.get(&key).is_some_and(|s| s.until() == until) {
                self.slots.remove(&key);
            }
        }
    }
}

/// The embedded, bounded dedup store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_entries: usize,
    next_token: AtomicU64,
}

impl MemoryStore {
    /// A store that keeps at most `max_entries` ids.
    pub fn new(max_entries: usize) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
            next_token: AtomicU64::new(1),
        }
    }

    /// How many ids (reserved or delivered) are held.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than refusing all traffic would, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reserve_now(&self, key: &str, lease: Duration) -> Reservation {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.expire(now);
        match inner.slots.get(key) {
            Some(Slot::Delivered { .. }) => return Reservation::Delivered,
            Some(Slot::InFlight { until, .. }) => {
                return Reservation::InFlight(until.saturating_duration_since(now))
            }
            None => {}
        }
        if inner.slots.len() >= self.max_entries {
            inner.make_room(self.max_entries);
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let until = now + lease;
        let key: Box<str> = key.into();
        inner.leases.push_back((until, key.clone()));
        inner.slots.insert(key, Slot::InFlight { token, until });
        Reservation::Acquired(token)
    }

    fn commit_now(&self, key: &str, token: Token, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        let owned =
            matches!(inner.slots.get(key), Some(Slot::InFlight { token: t, .. }) if *t == token);
        if owned {
            let until = now + ttl;
            let key: Box<str> = key.into();
            inner.delivered.push_back((until, key.clone()));
            inner.slots.insert(key, Slot::Delivered { until });
        }
    }

    fn release_now(&self, key: &str, token: Token) {
        let mut inner = self.lock();
        let owned =
            matches!(inner.slots.get(key), Some(Slot::InFlight { token: t, .. }) if *t == token);
        if owned {
            inner.slots.remove(key);
        }
    }
}

impl DedupStore for MemoryStore {
    fn reserve<'a>(&'a self, key: &'a str, lease: Duration) -> StoreFuture<'a, Reservation> {
        Box::pin(std::future::ready(Ok(self.reserve_now(key, lease))))
    }

    fn commit<'a>(&'a self, key: &'a str, token: Token, ttl: Duration) -> StoreFuture<'a, ()> {
        self.commit_now(key, token, ttl);
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> StoreFuture<'a, ()> {
        self.release_now(key, token);
        Box::pin(std::future::ready(Ok(())))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok::<(), StoreError>(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);
    const TTL: Duration = Duration::from_secs(3600);

    async fn acquire(store: &MemoryStore, key: &str) -> Token {
        match store.reserve(key, LEASE).await.unwrap() {
            Reservation::Acquired(t) => t,
            other => panic!("expected Acquired, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reserve_commit_then_duplicate() {
        let store = MemoryStore::new(10);
        let t = acquire(&store, "a").await;
        assert!(matches!(
            store.reserve("a", LEASE).await.unwrap(),
            Reservation::InFlight(_)
        ));
        store.commit("a", t, TTL).await.unwrap();
        assert_eq!(
            store.reserve("a", LEASE).await.unwrap(),
            Reservation::Delivered
        );
    }

    #[tokio::test(start_paused = true)]
    async fn release_lets_the_retry_through() {
        let store = MemoryStore::new(10);
        let t = acquire(&store, "a").await;
        store.release("a", t).await.unwrap();
        acquire(&store, "a").await;
    }

    #[tokio::test(start_paused = true)]
    async fn expired_lease_is_taken_over_and_old_owner_cannot_clobber() {
        let store = MemoryStore::new(10);
        let old = acquire(&store, "a").await;
        tokio::time::advance(LEASE + Duration::from_millis(1)).await;
        let new = acquire(&store, "a").await;
        // The crashed-and-late first attempt must not touch the retry's reservation.
        store.release("a", old).await.unwrap();
        store.commit("a", old, TTL).await.unwrap();
        assert!(matches!(
            store.reserve("a", LEASE).await.unwrap(),
            Reservation::InFlight(_)
        ));
        store.commit("a", new, TTL).await.unwrap();
        assert_eq!(
            store.reserve("a", LEASE).await.unwrap(),
            Reservation::Delivered
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delivered_ids_expire_after_ttl() {
        let store = MemoryStore::new(10);
        let t = acquire(&store, "a").await;
        store.commit("a", t, TTL).await.unwrap();
        tokio::time::advance(TTL + Duration::from_secs(1)).await;
        acquire(&store, "a").await;
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_max_entries_forgetting_oldest_delivered() {
        let store = MemoryStore::new(3);
        for k in ["a", "b", "c", "d", "e"] {
            let t = acquire(&store, k).await;
            store.commit(k, t, TTL).await.unwrap();
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(store.len(), 3);
        // The newest are remembered, the oldest forgotten.
        assert_eq!(
            store.reserve("e", LEASE).await.unwrap(),
            Reservation::Delivered
        );
        assert!(matches!(
            store.reserve("a", LEASE).await.unwrap(),
            Reservation::Acquired(_)
        ));
    }
}
