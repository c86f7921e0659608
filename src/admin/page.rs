//! The admin page: `GET /` and its script, style and icon under `/ui/`, compiled into the
//! binary (plain HTML, CSS and JS: no build step, nothing fetched from elsewhere).
//!
//! The files hold no data, so they load without the token; the script asks for it and
//! sends it as a Bearer header on every data call (never a cookie, so there is nothing
//! for another site to ride on). The policy headers keep the page to its own origin:
//! no inline script or style, no framing, no referrer.

use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::StatusCode;

use super::reply;
use crate::respond::HttpResponse;

/// One embedded file: its path, type and text.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("page/index.html"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/app.js"),
    },
    Asset {
        path: "/ui/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("page/app.css"),
    },
    Asset {
        path: "/ui/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("page/icon.svg"),
    },
];

/// Everything from this origin, nothing else; no plugins, no framing, no `<base>`.
const POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

/// Whether `path` is one of the page's files (served to anyone: they hold no data).
pub(super) fn is_page(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// The file at `path` with the policy headers, or 404.
pub(super) fn serve(path: &str) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return reply::error(StatusCode::NOT_FOUND, "not_found");
    };
    let mut resp = reply::reply(StatusCode::OK, asset.content_type, asset.body);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Always revalidated: after an upgrade the page and its script stay in step.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}
