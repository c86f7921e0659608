//! `hookwall run`: compile, open the storage, build, bind both listeners, serve until
//! SIGTERM/SIGINT (then drain, and write the journal's last entries), reload on SIGHUP.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::compile_file;
use crate::gateway::Gateway;
use crate::storage::Storage;

pub(super) async fn run(path: &Path) -> ExitCode {
    // Before anything opens a descriptor: the storage, Redis, both listeners.
    crate::transport::raise_open_files_limit();
    let config = match compile_file(path) {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.lines() {
                tracing::error!("{line}");
                eprintln!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let (listen, admin_listen) = (config.server.listen, config.admin.listen);
    let storage = match Storage::open(&config.storage.backend).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot open the storage");
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let gateway = match Gateway::new(config) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the gateway");
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let (proxy, admin) = match (
        TcpListener::bind(listen).await,
        TcpListener::bind(admin_listen).await,
    ) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) => {
            tracing::error!(address = %listen, error = %e, "cannot bind the proxy listener");
            return ExitCode::FAILURE;
        }
        (_, Err(e)) => {
            tracing::error!(address = %admin_listen, error = %e, "cannot bind the admin listener");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        proxy = %proxy.local_addr().map_or(listen, |a| a),
        admin = %admin.local_addr().map_or(admin_listen, |a| a),
        routes = gateway.live().config().routes.len(),
        "hookwall listening"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(watch_signals(gateway.clone(), stop_tx));
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The journal takes entries until the drain is over: requests answered while draining
    // are journaled like any other.
    let (drained, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let journal = gateway.attach_storage(storage.clone(), async move {
        let _ = drained_rx.await;
    });
    gateway.start_queue(stop_rx.clone()).await;
    gateway.start_reconcile(stop_rx.clone()).await;
    gateway.start_ip_ranges(stop_rx.clone());
    tokio::spawn(crate::journal::retention::run(
        gateway.clone(),
        storage.clone(),
        stopped(stop_rx.clone()),
    ));
    let admin_task = tokio::spawn(crate::admin::run(
        admin,
        gateway.clone(),
        stopped(stop_rx.clone()),
    ));
    // Claiming stops with the signal; attempts in flight get the same grace as requests,
    // at the same time.
    let queue_drained = {
        let (gateway, stop) = (gateway.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move {
            stop.await;
            let grace = gateway.live().config().server.shutdown_grace;
            gateway.drain_queue(grace).await;
        })
    };
    let telemetry = gateway.shared.telemetry.clone();
    crate::transport::run(proxy, gateway, stopped(stop_rx)).await;
    let _ = queue_drained.await;
    let _ = drained.send(());
    let _ = admin_task.await;
    // The entries of the last requests, written before exiting.
    let _ = journal.await;
    // The last spans, sent before exiting (the SDK's flush blocks).
    let _ =
        tokio::task::spawn_blocking(move || telemetry.shutdown(std::time::Duration::from_secs(5)))
            .await;
    tracing::info!("hookwall stopped");
    ExitCode::SUCCESS
}

/// SIGTERM/SIGINT stop; SIGHUP reloads.
async fn watch_signals(gateway: Arc<Gateway>, stop: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = gateway.reload();
            }
        }
    }
    tracing::info!("shutdown signal received");
    let _ = stop.send(true);
}
