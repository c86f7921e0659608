//! `hookwall echo [--listen ADDR]`: the printing upstream of `echo.rs`, for trying hookwall
//! out in a minute.

use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;

pub(super) async fn echo(listen: SocketAddr) -> ExitCode {
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hookwall echo: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    eprintln!(
        "hookwall echo: listening on http://{addr}; every delivery is printed below (Ctrl-C stops)"
    );
    tokio::select! {
        () = crate::echo::serve(listener, true) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
