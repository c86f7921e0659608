//! Load shedding (CONTRACT §3, check 2): at most `max_concurrency` requests in flight, and
//! at most `max_concurrency_per_ip` of them from one client, so that one sender holding
//! slots with slow bodies is answered `503 overloaded` while everyone else is still served.
//!
//! A client is its real IP (after `trusted_proxies`); IPv6 clients count per /64, the
//! smallest block a single host is usually given.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_ip::canonical;

/// The in-flight limits of one live config.
#[derive(Debug)]
pub(crate) struct Shedder {
    total: Arc<Semaphore>,
    per_client: usize,
    /// In-flight requests per client; an entry exists only while its count is above zero,
    /// so the map never holds more than `max_concurrency` entries.
    clients: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted request: gives its slots back when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    shedder: Arc<Shedder>,
    client: IpAddr,
    _slot: OwnedSemaphorePermit,
}

/// The key a client is counted under.
fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl Shedder {
    /// `total` slots, at most `per_client` of them for one client.
    pub(crate) fn new(total: usize, per_client: usize) -> Arc<Self> {
        Arc::new(Shedder {
            total: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))),
            per_client,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a request from `client`, or `None`: shed it.
    pub(crate) fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Admitted> {
        let slot = self.total.clone().try_acquire_owned().ok()?;
        let client = client_key(client);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let count = clients.entry(client).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        drop(clients);
        Some(Admitted {
            shedder: self.clone(),
            client,
            _slot: slot,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut clients = self
            .shedder
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = clients.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_client_past_its_share_is_shed_and_others_are_not() {
        let shedder = Shedder::new(3, 2);
        let a1 = shedder.admit(ip("192.0.2.1")).unwrap();
        let _a2 = shedder.admit(ip("192.0.2.1")).unwrap();
        assert!(shedder.admit(ip("192.0.2.1")).is_none());
        let _b = shedder.admit(ip("192.0.2.2")).unwrap();
        drop(a1);
        let _a3 = shedder.admit(ip("192.0.2.1")).unwrap();
        // All three slots are taken now: anyone is shed.
        assert!(shedder.admit(ip("192.0.2.3")).is_none());
    }

    #[test]
    fn a_shed_request_holds_no_slot_and_finished_clients_leave_no_entry() {
        let shedder = Shedder::new(2, 1);
        let a = shedder.admit(ip("192.0.2.1")).unwrap();
        assert!(shedder.admit(ip("192.0.2.1")).is_none());
        assert_eq!(shedder.total.available_permits(), 1);
        drop(a);
        assert!(shedder.clients.lock().unwrap().is_empty());
        assert_eq!(shedder.total.available_permits(), 2);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let shedder = Shedder::new(8, 1);
        let _a = shedder.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(shedder.admit(ip("2001:db8:1:2:ffff::9")).is_none());
        let _b = shedder.admit(ip("2001:db8:1:3::1")).unwrap();
        let _c = shedder.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert!(shedder.admit(ip("192.0.2.1")).is_none());
    }
}
