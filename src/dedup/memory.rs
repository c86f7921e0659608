//! The embedded store: one process, bounded by `max_entries`, expiring by TTL.
//!
//! The ids are split over shards by hash, each with its own lock. In a shard one table
//! maps each delivered id to its expiry, 24 bytes an entry, and a second, small table
//! holds the leases of the attempts in flight (with their tokens). Expired ids are swept
//! out of a shard's table when it has grown by a quarter since the last sweep, so the
//! sweeps cost O(1) per id over time and no per-id expiry queue is kept. When a shard is
//! full, its oldest delivered ids are forgotten first (a later duplicate may then be
//! forwarded again, which the upstream's idempotency absorbs); refusing new deliveries
//! instead would turn a full table into an outage.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{DedupStore, Reservation, StoreError, StoreFuture, Token};

/// A key as stored: 128 bits of two SipHash runs under random per-process keys. Fixed size,
/// so storing an id allocates nothing; a chance collision (about n²/2¹²⁹) is negligible
/// and, the hash keys being secret, cannot be forced by a client. Two `u64`s rather than
/// a `u128`, whose 16-byte alignment would pad every table entry to 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    high: u64,
    low: u64,
}

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a keyed hash: the table uses the high half as is.
        state.write_u64(self.high);
    }
}

/// Ids held per shard before a store is split (one lock, one table per shard).
const IDS_PER_SHARD: usize = 4096;
/// Most shards: enough that two workers rarely wait on one lock, and that growing one
/// shard's table (a copy under its lock) stalls few requests.
const MAX_SHARDS: usize = 64;
/// A shard's table is swept of expired ids once it holds this many more than after
/// its last sweep, and at least a quarter more.
const MIN_SWEEP_GROWTH: usize = 256;
/// Low bits of a stamp that order ids delivered within the same millisecond.
const SEQUENCE_BITS: u32 = 20;
/// The latest expiry a stamp holds (about 550 years of milliseconds); later ones are
/// kept as this.
const MAX_MILLIS: u64 = (1 << (64 - SEQUENCE_BITS)) - 1;

/// The table hashes a fingerprint by its high half (see [`Fingerprint`]'s `Hash`).
#[derive(Debug, Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so it stays a hash.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Table<V> = HashMap<Fingerprint, V, BuildHasherDefault<FingerprintHasher>>;

/// An attempt in flight.
#[derive(Debug, Clone, Copy)]
struct Lease {
    token: Token,
    until: Instant,
}

#[derive(Debug, Default)]
struct Shard {
    /// Delivered ids and their stamp: the expiry in milliseconds since the store's epoch,
    /// shifted left by [`SEQUENCE_BITS`], with a per-shard sequence number below, so
    /// stamps also order ids by delivery (all share one TTL) for forgetting the oldest.
    delivered: Table<u64>,
    leases: Table<Lease>,
    sequence: u64,
    /// `delivered.len()` at which the next sweep runs.
    sweep_at: usize,
}

impl Shard {
    fn len(&self) -> usize {
        self.delivered.len() + self.leases.len()
    }

    fn stamp(&mut self, until_ms: u64) -> u64 {
        self.sequence = self.sequence.wrapping_add(1);
        (until_ms << SEQUENCE_BITS) | (self.sequence & ((1 << SEQUENCE_BITS) - 1))
    }

    /// Drops every expired id and lease, and sets when to sweep next.
    fn sweep(&mut self, now: Instant, now_ms: u64) {
        self.delivered
            .retain(|_, stamp| *stamp >> SEQUENCE_BITS > now_ms);
        self.leases.retain(|_, lease| lease.until > now);
        let held = self.delivered.len();
        self.sweep_at = held + (held / 4).max(MIN_SWEEP_GROWTH);
    }

    /// Makes room for one entry: expired ids first, then the oldest delivered ones (about
    /// a sixteenth of the shard at a time, so a full shard is not scanned per request).
    fn make_room(&mut self, max_entries: usize, now: Instant, now_ms: u64) {
        self.sweep(now, now_ms);
        if self.len() < max_entries || self.delivered.is_empty() {
            return;
        }
        let mut stamps: Vec<u64> = self.delivered.values().copied().collect();
        let forget = (stamps.len() / 16).clamp(1, stamps.len());
        let (_, &mut cutoff, _) = stamps.select_nth_unstable(forget - 1);
        self.delivered.retain(|_, stamp| *stamp > cutoff);
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
    /// Stamps count milliseconds from here.
    epoch: Instant,
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
            epoch: Instant::now(),
        }
    }

    /// How many ids (reserved or delivered) are held, counting expired ones that the
    /// next sweep will drop.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fingerprint(&self, key: &str) -> Fingerprint {
        Fingerprint {
            high: self.hash_keys.0.hash_one(key),
            low: self.hash_keys.1.hash_one(key),
        }
    }

    /// The shard of a key, locked.
    fn shard(&self, key: Fingerprint) -> std::sync::MutexGuard<'_, Shard> {
        // The low half picks the shard; the table uses the high half.
        lock(&self.shards[(key.low as usize) & (self.shards.len() - 1)])
    }

    /// Milliseconds since the epoch (the store's time for stamps).
    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(MAX_MILLIS)
            .min(MAX_MILLIS)
    }

    fn reserve_now(&self, key: &str, lease: Duration) -> Reservation {
        let key = self.fingerprint(key);
        let now = Instant::now();
        let now_ms = self.millis(now);
        let mut shard = self.shard(key);
        if let Some(&stamp) = shard.delivered.get(&key) {
            if stamp >> SEQUENCE_BITS > now_ms {
                return Reservation::Delivered;
            }
            shard.delivered.remove(&key);
        }
        if shard.delivered.len() >= shard.sweep_at {
            shard.sweep(now, now_ms);
        }
        if shard.len() >= self.max_entries && !shard.leases.contains_key(&key) {
            shard.make_room(self.max_entries, now, now_ms);
        }
        let token = match shard.leases.entry(key) {
            Entry::Occupied(held) if held.get().until > now => {
                return Reservation::InFlight(held.get().until.saturating_duration_since(now));
            }
            // An attempt that never settled (its lease ended): the retry takes over.
            Entry::Occupied(mut expired) => {
                let token = self.next_token.fetch_add(1, Ordering::Relaxed);
                expired.insert(Lease {
                    token,
                    until: now + lease,
                });
                token
            }
            Entry::Vacant(free) => {
                let token = self.next_token.fetch_add(1, Ordering::Relaxed);
                free.insert(Lease {
                    token,
                    until: now + lease,
                });
                token
            }
        };
        Reservation::Acquired(token)
    }

    fn commit_now(&self, key: &str, token: Token, ttl: Duration) {
        let key = self.fingerprint(key);
        let until_ms = self.millis(Instant::now() + ttl);
        let mut shard = self.shard(key);
        if let Entry::Occupied(lease) = shard.leases.entry(key) {
            if lease.get().token == token {
                lease.remove();
                let stamp = shard.stamp(until_ms);
                shard.delivered.insert(key, stamp);
            }
        }
    }

    fn release_now(&self, key: &str, token: Token) {
        let key = self.fingerprint(key);
        let mut shard = self.shard(key);
        if let Entry::Occupied(lease) = shard.leases.entry(key) {
            if lease.get().token == token {
                lease.remove();
            }
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
    async fn expired_ids_are_swept_out_as_the_table_grows() {
        // One shard, so its sweeps are the ones counted.
        let store = MemoryStore::new(4000);
        assert_eq!(store.shards.len(), 1);
        for i in 0..1000 {
            let id = format!("old-{i}");
            let t = acquire(&store, &id).await;
            store.commit(&id, t, TTL).await.unwrap();
        }
        tokio::time::advance(TTL + Duration::from_secs(1)).await;
        for i in 0..1000 {
            let id = format!("new-{i}");
            let t = acquire(&store, &id).await;
            store.commit(&id, t, TTL).await.unwrap();
        }
        // One sweep at most MIN_SWEEP_GROWTH (or a quarter) after the old ones expired.
        assert!(
            store.len() <= 1000 + MIN_SWEEP_GROWTH,
            "{} held",
            store.len()
        );
        assert!(matches!(
            store.reserve("old-1", LEASE).await.unwrap(),
            Reservation::Acquired(_)
        ));
        assert_eq!(
            store.reserve("new-1", LEASE).await.unwrap(),
            Reservation::Delivered
        );
    }

    #[test]
    fn a_table_entry_is_24_bytes() {
        // What bench/memory.sh's bytes-per-id rests on (plus the table's own slack).
        assert_eq!(std::mem::size_of::<(Fingerprint, u64)>(), 24);
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
