//! The per-route tables of the presets that need more than `secrets`: `meta`, `sns`,
//! `google`, `plaid`, and `fetch_tls` (the trust roots for the keys and APIs those presets
//! call). Also the secrets rules that differ by preset: fetched-key presets take none, and
//! Asana's single `{ file = ... }` secret may not exist yet (it is learned).
//!
//! Key URLs, API bases and host allowlists have safe defaults (config/defaults.rs) and
//! change only when a route says so explicitly, which is how tests point them at loopback.

use std::sync::Arc;

use http::Uri;

use super::Compiler;
use crate::config::raw::RawRoute;
use crate::config::{defaults, ProviderSettings, SnsSettings};
use crate::outbound::tls::{client_config, TlsClientFiles};
use crate::secret::Secret;
use crate::verify::fetched_keys::{HostAllowlist, KeySource, SourceKind};
use crate::verify::jwt::{JwtKeys, PendingSource};
use crate::verify::learned::LearnedSecret;
use crate::verify::presets::{HandshakeKind, Preset, ProviderTable};
use crate::verify::{Algorithm, Scheme, Verifier};

/// The tables each preset reads, for "does not apply" messages.
const TABLES: [(&str, ProviderTable, &str); 3] = [
    (
        "google",
        ProviderTable::Google,
        "google-pubsub or google-chat",
    ),
    ("plaid", ProviderTable::Plaid, "plaid"),
    ("sns", ProviderTable::Sns, "sns"),
];

impl Compiler {
    /// Whether this preset verifies with keys it fetches (no `secrets` then).
    pub(super) fn fetches_keys(preset: Option<&Preset>) -> bool {
        preset.is_some_and(|p| p.schemes.iter().any(|s| s.scheme.fetches_keys_or_pending()))
    }

    /// Asana's secret file: the path, and its content if the secret was learned already.
    pub(super) fn learned_secret(&mut self, at: &str, r: &RawRoute) -> Option<Arc<LearnedSecret>> {
        let path = format!("{at}.secrets");
        let file = match r.secrets.as_deref() {
            Some([one]) if one.file.is_some() && one.value.is_none() && one.env.is_none() => {
                one.file.clone().unwrap_or_default()
            }
            _ => {
                self.error(
                    &path,
                    "provider \"asana\" learns its secret from Asana's X-Hook-Secret handshake: give exactly one secret, { file = \"...\" }, where hookwall stores it (or where you put it yourself)".to_owned(),
                );
                return None;
            }
        };
        let file = self.resolve(&file);
        let existing = match std::fs::read(&file) {
            Ok(mut bytes) => {
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                (!bytes.is_empty()).then_some(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                self.error(&format!("{path}[0]"), format!("cannot read {file:?}: {e}"));
                return None;
            }
        };
        if existing.is_none() {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                self.error(
                    &format!("{path}[0]"),
                    format!("the folder of {file:?} does not exist: the learned secret could not be stored"),
                );
                return None;
            }
        }
        Some(Arc::new(LearnedSecret::new(
            file,
            Algorithm::Sha256,
            existing.as_deref(),
        )))
    }

    /// Fills in what a preset's schemes need from the route (fetched-key sources, Asana's
    /// learned secret) and compiles the provider tables.
    pub(super) fn provider_settings(
        &mut self,
        at: &str,
        r: &RawRoute,
        provider: &str,
        preset: Option<&Preset>,
        verifier: Option<&mut Verifier>,
        learned: Option<Arc<LearnedSecret>>,
    ) -> ProviderSettings {
        let table = preset.and_then(|p| p.table);
        let given = [r.google.is_some(), r.plaid.is_some(), r.sns.is_some()];
        for ((name, kind, owners), given) in TABLES.iter().zip(given) {
            if given && table != Some(*kind) {
                self.error(
                    &format!("{at}.{name}"),
                    format!("applies to provider = {owners} only (this route's provider is {provider:?})"),
                );
            }
        }
        let handshake = preset.and_then(|p| p.handshake);
        if r.meta.is_some() && handshake != Some(HandshakeKind::MetaVerification) {
            self.error(
                &format!("{at}.meta"),
                format!(
                    "applies to provider = \"meta\" only (this route's provider is {provider:?})"
                ),
            );
        }
        let fetches = Self::fetches_keys(preset);
        if r.fetch_tls.is_some() && !fetches {
            self.error(
                &format!("{at}.fetch_tls"),
                "applies to presets that fetch keys (google-pubsub, google-chat, plaid, sns)"
                    .to_owned(),
            );
        }
        let mut settings = ProviderSettings::default();
        if handshake == Some(HandshakeKind::MetaVerification) {
            settings.meta_verify_token = r
                .meta
                .as_ref()
                .and_then(|m| m.verify_token.as_ref())
                .and_then(|t| self.string_or_secret(&format!("{at}.meta.verify_token"), t));
            if r.meta
                .as_ref()
                .and_then(|m| m.verify_token.as_ref())
                .is_none()
            {
                self.warnings.push(format!(
                    "{at}: provider \"meta\" without meta.verify_token refuses Meta's verification request (403); set meta = {{ verify_token = {{ env = \"...\" }} }} to subscribe"
                ));
            }
        }
        let Some(verifier) = verifier else {
            return settings;
        };
        if let Some(learned) = learned {
            for keyed in &mut verifier.schemes {
                if let Scheme::Hmac(s) = &keyed.scheme {
                    keyed.scheme = Scheme::Learned(s.clone(), learned.clone());
                    keyed.keys.clear();
                }
            }
            settings.learned = Some(learned);
        }
        if !fetches {
            return settings;
        }
        let Some((tls, tls_id)) = self.fetch_tls(at, r) else {
            return settings;
        };
        for keyed in &mut verifier.schemes {
            match &mut keyed.scheme {
                Scheme::Jwt(jwt) => {
                    let JwtKeys::Pending(pending) = jwt.keys else {
                        continue;
                    };
                    let kind = match pending {
                        PendingSource::GoogleCerts | PendingSource::ChatCertificates => {
                            let Some(g) = self.google(at, r, pending) else {
                                continue;
                            };
                            jwt.audience = Some(g.audience);
                            jwt.email = g.service_account;
                            if pending == PendingSource::GoogleCerts {
                                SourceKind::Jwks { url: g.key_url }
                            } else {
                                SourceKind::X509Map { url: g.key_url }
                            }
                        }
                        PendingSource::Plaid => match self.plaid(at, r) {
                            Some(kind) => kind,
                            None => continue,
                        },
                    };
                    jwt.keys = JwtKeys::Fetched(KeySource::shared(kind, tls.clone(), &tls_id));
                }
                Scheme::Sns(sns) => {
                    let Some(s) = self.sns(at, r, tls.clone()) else {
                        continue;
                    };
                    sns.hosts = s.hosts.clone();
                    sns.source = Some(KeySource::shared(
                        SourceKind::SnsCertificate {
                            hosts: s.hosts.clone(),
                        },
                        tls.clone(),
                        &tls_id,
                    ));
                    settings.sns = Some(s);
                }
                _ => {}
            }
        }
        settings
    }

    fn fetch_tls(&mut self, at: &str, r: &RawRoute) -> Option<(Arc<rustls::ClientConfig>, String)> {
        let ca_file = r
            .fetch_tls
            .as_ref()
            .and_then(|t| t.ca_file.as_deref())
            .map(|f| self.resolve(f));
        let id = ca_file
            .as_ref()
            .map_or_else(|| "system roots".to_owned(), |f| f.display().to_string());
        let files = TlsClientFiles {
            ca_file,
            identity: None,
        };
        self.check(&format!("{at}.fetch_tls"), client_config(&files))
            .map(|tls| (tls, id))
    }

    fn https_url(&mut self, path: &str, url: &str) -> Option<String> {
        match url.parse::<Uri>() {
            Ok(u) if u.scheme_str() == Some("https") && u.authority().is_some() => {
                Some(url.trim_end_matches('/').to_owned())
            }
            _ => {
                self.error(
                    path,
                    format!("{url:?} must be an absolute https:// URL (keys are only fetched over HTTPS)"),
                );
                None
            }
        }
    }

    fn google(&mut self, at: &str, r: &RawRoute, pending: PendingSource) -> Option<Google> {
        let path = format!("{at}.google");
        let chat = pending == PendingSource::ChatCertificates;
        let Some(g) = &r.google else {
            let example = if chat {
                "google = { audience = \"<the Chat app's Cloud project number>\" }"
            } else {
                "google = { audience = \"<the push subscription's audience>\", service_account = \"<push service account email>\" }"
            };
            self.error(
                &path,
                format!("is required: the token must be checked against your audience ({example})"),
            );
            return None;
        };
        let audience = match g.audience.as_deref() {
            Some(a) if !a.is_empty() => a.to_owned(),
            _ => {
                self.error(&format!("{path}.audience"), "is required".to_owned());
                return None;
            }
        };
        let service_account = match (chat, g.service_account.as_deref()) {
            (true, None) => None,
            (true, Some(_)) => {
                self.error(
                    &format!("{path}.service_account"),
                    "does not apply to google-chat: Chat's tokens are issued by chat@system.gserviceaccount.com itself".to_owned(),
                );
                return None;
            }
            (false, Some(e)) if e.contains('@') => Some(e.to_owned()),
            (false, Some(e)) => {
                self.error(
                    &format!("{path}.service_account"),
                    format!("{e:?} is not a service account email"),
                );
                return None;
            }
            (false, None) => {
                self.error(
                    &format!("{path}.service_account"),
                    "is required: the email of the service account the push subscription authenticates as".to_owned(),
                );
                return None;
            }
        };
        let default = if chat {
            defaults::GOOGLE_CHAT_CERTS_URL
        } else {
            defaults::GOOGLE_CERTS_URL
        };
        let key_url = self.https_url(
            &format!("{path}.key_url"),
            g.key_url.as_deref().unwrap_or(default),
        )?;
        Some(Google {
            audience,
            service_account,
            key_url,
        })
    }

    fn plaid(&mut self, at: &str, r: &RawRoute) -> Option<SourceKind> {
        let path = format!("{at}.plaid");
        let Some(p) = &r.plaid else {
            self.error(
                &path,
                "is required: plaid = { client_id = { env = \"PLAID_CLIENT_ID\" }, secret = { env = \"PLAID_SECRET\" } } (the verification keys are fetched with them)".to_owned(),
            );
            return None;
        };
        let secret_at = |cx: &mut Self,
                         key: &str,
                         v: Option<&crate::config::raw::StringOrSecret>|
         -> Option<Secret> {
            match v {
                Some(v) => cx.string_or_secret(&format!("{path}.{key}"), v),
                None => {
                    cx.error(&format!("{path}.{key}"), "is required".to_owned());
                    None
                }
            }
        };
        let client_id = secret_at(self, "client_id", p.client_id.as_ref());
        let secret = secret_at(self, "secret", p.secret.as_ref());
        let api_base = self.https_url(
            &format!("{path}.api_base"),
            p.api_base.as_deref().unwrap_or(defaults::PLAID_API_BASE),
        );
        Some(SourceKind::Plaid {
            api_base: api_base?,
            client_id: client_id?,
            secret: secret?,
        })
    }

    fn sns(
        &mut self,
        at: &str,
        r: &RawRoute,
        tls: Arc<rustls::ClientConfig>,
    ) -> Option<SnsSettings> {
        let path = format!("{at}.sns");
        let Some(s) = &r.sns else {
            self.error(
                &path,
                "is required: sns = { topics = [\"arn:aws:sns:<region>:<account>:<topic>\"] } (messages from other topics are refused)".to_owned(),
            );
            return None;
        };
        let topics = s.topics.clone().unwrap_or_default();
        if topics.is_empty() {
            self.error(
                &format!("{path}.topics"),
                "must list the topic ARNs whose messages this route accepts".to_owned(),
            );
        }
        let mut ok = !topics.is_empty();
        for (i, t) in topics.iter().enumerate() {
            let parts: Vec<&str> = t.split(':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
                self.error(
                    &format!("{path}.topics[{i}]"),
                    format!("{t:?} is not a topic ARN (arn:aws:sns:<region>:<account>:<topic>)"),
                );
                ok = false;
            }
        }
        let hosts: Vec<String> = match &s.cert_hosts {
            Some(h) => h.clone(),
            None => defaults::SNS_CERT_HOSTS
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
        };
        if hosts.is_empty() {
            self.error(
                &format!("{path}.cert_hosts"),
                "must list at least one host pattern".to_owned(),
            );
            return None;
        }
        let hosts = self.check(&format!("{path}.cert_hosts"), HostAllowlist::new(&hosts))?;
        ok.then(|| SnsSettings {
            topics,
            auto_confirm: s.auto_confirm.unwrap_or(false),
            hosts,
            tls,
        })
    }
}

struct Google {
    audience: String,
    service_account: Option<String>,
    key_url: String,
}
