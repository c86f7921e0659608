//! Reconcile on a fleet (CONTRACT §11): two instances on one private PostgreSQL never run a
//! route's reconcile at the same time (a lease in storage), and either continues where the
//! other stopped.

use std::sync::Arc;
use std::time::Duration;

use hookwall::config::StorageBackend;
use hookwall::secret::Secret;
use hookwall::storage::Storage;

use crate::fake_provider_api::{FakeStripe, STRIPE_KEY};
use crate::postgres_server::PostgresServer;
use crate::support::*;

async fn instance(pg: &PostgresServer, up: &Upstream, api: &FakeStripe) -> TestGateway {
    let route = preset_route(
        up,
        "stripe",
        "whsec_fleet",
        &format!(
            "[route.reconcile]\nsource = \"stripe\"\nevery = \"1h\"\napi_base = \"{}\"\ncredentials = {{ value = \"{STRIPE_KEY}\" }}\nmax_pages = 2\n",
            api.base()
        ),
    );
    let cfg =
        hookwall::config::compile_str(&config_with("", "", &route), std::path::Path::new("t.toml"))
            .unwrap();
    // One dedup store for the fleet would be Redis; here each has its own, so only the
    // lease and the cursor keep the two from delivering an event twice.
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    let backend = StorageBackend::Postgres {
        url: Secret::new(pg.url()),
    };
    let storage = Arc::new(Storage::open(&backend).await.unwrap());
    TestGateway::start_on(cfg, stores, storage).await
}

async fn run_now(gw: &TestGateway) -> (u16, serde_json::Value) {
    let (status, _, body) = post(&gw.admin_url("/reconcile/stripe/run"), &[], b"").await;
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn two_instances_never_reconcile_one_route_at_once() {
    let pg = PostgresServer::start().await;
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    for i in 0..450 {
        api.add(&format!("evt_{i:03}"), NOW - 5000 + i);
    }
    // Each page takes a while, so the two runs overlap in time.
    api.common.delay(Duration::from_millis(300));
    let a = instance(&pg, &up, &api).await;
    let b = instance(&pg, &up, &api).await;

    let (first, second) = tokio::join!(run_now(&a), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        run_now(&b).await
    });
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(
        second.0, 409,
        "the other instance holds the lease: {second:?}"
    );
    assert_eq!(second.1["error"], "reconcile_running");
    assert_eq!(api.common.max_in_flight(), 1, "never two pollers at once");
    assert_eq!(first.1["recovered"], 200);

    // The lease is given back: the other instance continues the walk where it stopped.
    let (code, b_run) = run_now(&b).await;
    assert_eq!(code, 200, "{b_run}");
    assert_eq!(b_run["recovered"], 200, "{b_run}");
    let (_, a_run) = run_now(&a).await;
    assert_eq!(a_run["recovered"], 50, "{a_run}");
    let mut ids = up.delivery_ids();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((total, ids.len()), (450, 450), "each event once");
}
