//! The embedded store: one process, bounded by `max_entries`, expiring by TTL.
//!
//! The ids are split over shards by hash, each with its own lock. In a shard a `HashMap`
//! holds the state; two queues (leases, deliveries) hold expiry times in insertion order.
//! All leases share one duration and all deliveries another, so each queue is ordered by
//! expiry and cleaning is popping from the front. When a shard is full, its oldest
//! delivered ids are forgotten first (a later duplicate may then be forwarded
//! again, which the upstream's idempotency absorbs); refusing new deliveries instead would
//! turn a full table into an outage.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{DedupStore, Reservation, StoreError, StoreFuture, Token};

/// A key as stored: 128 bits of two SipHash runs under random per-process keys. Fixed size,
/// so storing an id allocates nothing; a chance collision (about n²/2¹²⁹) is negligible
/// and, the hash keys being secret, cannot be forced by a client.
type Fingerprint = u128;

/// Ids held per shard before a store is split (one lock, one table per shard).
const IDS_PER_SHARD: usize = 4096;
/// Most shards: enough that two workers rarely wait on one lock, and that growing one
/// shard's table (a copy under its lock) stalls few requests.
const MAX_SHARDS: usize = 64;

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

/// The table hashes a fingerprint by its high half: it is already a keyed hash.
#[derive(Debug, Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; fold anything else in so it stays a hash.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = (n >> 64) as u64;
    }
}

#[derive(Debug, Default)]
struct Shard {
    slots: HashMap<Fingerprint, Slot, BuildHasherDefault<FingerprintHasher>>,
    leases: VecDeque<(Instant, Fingerprint)>,
    delivered: VecDeque<(Instant, Fingerprint)>,
}

impl Shard {
    /// Drops every entry whose time has passed.
    fn expire(&mut self, now: Instant) {
        for queue in [&mut self.leases, &mut self.delivered] {
            while let Some(&(until, key)) = queue.front() {
                if until > now {
                    break;
                }
                queue.pop_front();
                // The queue may hold stale records for keys that moved on.
                if self.slots.get(&key).is_some_and(|s| s.until() == until) {
                    self.slots.remove(&key);
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
    shards: Box<[Mutex<Shard>]>,
    /// Per shard.
    max_entries: usize,
    hash_keys: (RandomState, RandomState),
    next_token: AtomicU64,
}

impl MemoryStore {
    /// A store that keeps at most `max_entries` ids (split evenly over its shards; small
    /// stores have one, so the bound is exact there).
    pub fn new(max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        let shards = (max_entries / IDS_PER_SHARD)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            max_entries: max_entries.div_ceil(shards),
            hash_keys: (RandomState::new(), RandomState::new()),
            next_token: AtomicU64::new(1),
        }
    }

    /// How many ids (reserved or delivered) are held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).slots.len()).sum()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fingerprint(&self, key: &str) -> Fingerprint {
        let high = self.hash_keys.0.hash_one(key);
        let low = self.hash_keys.1.hash_one(key);
        (u128::from(high) << 64) | u128::from(low)
    }

    /// The shard of a key, locked.
    fn shard(&self, key: Fingerprint) -> std::sync::MutexGuard<'_, Shard> {
        // The low half picks the shard; the table uses the high half.
        lock(&self.shards[(key as usize) & (self.shards.len() - 1)])
    }

    fn reserve_now(&self, key: &str, lease: Duration) -> Reservation {
        let key = self.fingerprint(key);
        let now = Instant::now();
        let mut shard = self.shard(key);
        shard.expire(now);
        if shard.slots.len() >= self.max_entries && !shard.slots.contains_key(&key) {
            shard.make_room(self.max_entries);
        }
        let Shard { slots, leases, .. } = &mut *shard;
        match slots.entry(key) {
            Entry::Occupied(held) => match *held.get() {
                Slot::Delivered { .. } => Reservation::Delivered,
                Slot::InFlight { until, .. } => {
                    Reservation::InFlight(until.saturating_duration_since(now))
                }
            },
            Entry::Vacant(free) => {
                let token = self.next_token.fetch_add(1, Ordering::Relaxed);
                let until = now + lease;
                leases.push_back((until, key));
                free.insert(Slot::InFlight { token, until });
                Reservation::Acquired(token)
            }
        }
    }

    fn commit_now(&self, key: &str, token: Token, ttl: Duration) {
        let key = self.fingerprint(key);
        let now = Instant::now();
        let mut shard = self.shard(key);
        let Shard {
            slots, delivered, ..
        } = &mut *shard;
        if let Some(slot) = slots.get_mut(&key) {
            if matches!(slot, Slot::InFlight { token: t, .. } if *t == token) {
                let until = now + ttl;
                *slot = Slot::Delivered { until };
                delivered.push_back((until, key));
            }
        }
    }

    fn release_now(&self, key: &str, token: Token) {
        let key = self.fingerprint(key);
        let mut shard = self.shard(key);
        let owned =
            matches!(shard.slots.get(&key), Some(Slot::InFlight { token: t, .. }) if *t == token);
        if owned {
            shard.slots.remove(&key);
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // A panic while holding the lock cannot leave the table half-updated in a way that
    // matters more than refusing all traffic would, so keep serving.
    shard.lock().unwrap_or_else(|e| e.into_inner())
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

    fn entries(&self) -> Option<usize> {
        Some(self.len())
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

    #[tokio::test(start_paused = true)]
    async fn a_sharded_store_stays_bounded_and_remembers_recent_ids() {
        let max = IDS_PER_SHARD * 4;
        let store = MemoryStore::new(max);
        assert_eq!(store.shards.len(), 4);
        let ids: Vec<String> = (0..max * 3).map(|i| format!("evt_{i}")).collect();
        for id in &ids {
            let t = acquire(&store, id).await;
            store.commit(id, t, TTL).await.unwrap();
        }
        assert!(store.len() <= max, "{} ids held", store.len());
        // Each shard forgets its oldest first: the last few hundred are all remembered.
        for id in ids.iter().rev().take(500) {
            assert_eq!(
                store.reserve(id, LEASE).await.unwrap(),
                Reservation::Delivered,
                "{id}"
            );
        }
    }
}
