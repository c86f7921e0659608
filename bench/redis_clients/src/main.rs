//! What one delivery's Redis dedup costs the client, with the redis crate (hookwall's)
//! and with fred: the same commands as hookwall's Redis store (reserve: `SET lease NX GET
//! PX` and `GET` pipelined; commit: `MULTI SET PX, DEL EXEC`), from `TASKS` concurrent
//! tasks on one multiplexed connection and one current-thread runtime, as a hookwall
//! worker runs them.
//!
//!   redis_clients redis|fred URL DELIVERIES [TASKS]
//!
//! bench/redis_clients.sh runs it under callgrind twice per client and prints the
//! instructions per delivery (the difference over the difference in deliveries).

use std::time::Instant;

use fred::prelude::{
    Builder, ClientLike, Config, Expiration, KeysInterface, SetOptions, TransactionInterface,
};

const LEASE_MS: i64 = 60_000;
const TTL_MS: i64 = 3_600_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (client, url, deliveries, tasks) = match args.as_slice() {
        [c, u, n] => (c.clone(), u.clone(), n.parse().expect("DELIVERIES"), 64),
        [c, u, n, t] => (
            c.clone(),
            u.clone(),
            n.parse().expect("DELIVERIES"),
            t.parse().expect("TASKS"),
        ),
        _ => {
            eprintln!("usage: redis_clients redis|fred URL DELIVERIES [TASKS]");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    runtime.block_on(async {
        match client.as_str() {
            "redis" => with_redis(&url, deliveries, tasks).await,
            "fred" => with_fred(&url, deliveries, tasks).await,
            other => panic!("unknown client {other}"),
        }
    });
    println!(
        "REDIS_CLIENTS client={client} deliveries={deliveries} tasks={tasks} secs={:.2}",
        started.elapsed().as_secs_f64()
    );
}

fn keys(n: usize) -> (String, String, String) {
    let delivered = format!("hookwall:dedup:{{bench:evt_{n}}}");
    let lease = format!("{delivered}:lease");
    (delivered, lease, format!("{:032x}", n))
}

async fn with_redis(url: &str, deliveries: usize, tasks: usize) {
    let client = redis::Client::open(url).expect("url");
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .expect("connect");
    let mut handles = Vec::new();
    for t in 0..tasks {
        let conn = conn.clone();
        handles.push(tokio::spawn(async move {
            for n in (t..deliveries).step_by(tasks) {
                let (delivered, lease, token) = keys(n);
                let mut c = conn.clone();
                let (was, done): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
                    .cmd("SET")
                    .arg(&lease)
                    .arg(&token)
                    .arg("NX")
                    .arg("GET")
                    .arg("PX")
                    .arg(LEASE_MS)
                    .cmd("GET")
                    .arg(&delivered)
                    .query_async(&mut c)
                    .await
                    .expect("reserve");
                assert!(was.is_none() && done.is_none(), "ids are unique");
                let () = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&delivered)
                    .arg("d")
                    .arg("PX")
                    .arg(TTL_MS)
                    .ignore()
                    .cmd("DEL")
                    .arg(&lease)
                    .ignore()
                    .query_async(&mut c)
                    .await
                    .expect("commit");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

async fn with_fred(url: &str, deliveries: usize, tasks: usize) {
    let client = Builder::from_config(Config::from_url(url).expect("url"))
        .build()
        .expect("client");
    client.init().await.expect("connect");
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            for n in (t..deliveries).step_by(tasks) {
                let (delivered, lease, token) = keys(n);
                let pipe = client.pipeline();
                let () = pipe
                    .set(
                        lease.as_str(),
                        token.as_str(),
                        Some(Expiration::PX(LEASE_MS)),
                        Some(SetOptions::NX),
                        true,
                    )
                    .await
                    .expect("queue");
                let () = pipe.get(delivered.as_str()).await.expect("queue");
                let (was, done): (Option<String>, Option<String>) =
                    pipe.all().await.expect("reserve");
                assert!(was.is_none() && done.is_none(), "ids are unique");
                let trx = client.multi();
                let () = trx
                    .set(
                        delivered.as_str(),
                        "d",
                        Some(Expiration::PX(TTL_MS)),
                        None,
                        false,
                    )
                    .await
                    .expect("queue");
                let () = trx.del(lease.as_str()).await.expect("queue");
                let _: (String, i64) = trx.exec(true).await.expect("commit");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}
