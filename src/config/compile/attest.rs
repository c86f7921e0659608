//! `attest = { secret = ..., previous = [...] }`: the keys hookwall signs what it forwards
//! with (CONTRACT §12), in `[server]` or on a route.

use std::sync::Arc;

use super::Compiler;
use crate::attest::AttestKeys;
use crate::config::raw::{RawAttest, StringOrSecret};
use crate::verify::keys::{material, KeyFormat};
use crate::verify::mac::Algorithm;
use crate::verify::KeyMaterial;

impl Compiler {
    /// The keys of one `attest` table at `path`, current first; `None` after an error.
    pub(super) fn attest(&mut self, path: &str, raw: &RawAttest) -> Option<Arc<AttestKeys>> {
        let errors_before = self.errors.len();
        let mut keys = Vec::new();
        match &raw.secret {
            Some(s) => keys.extend(self.attest_key(&format!("{path}.secret"), s)),
            None => self.error(
                &format!("{path}.secret"),
                "is required: the key hookwall signs with, e.g. { env = \"HOOKWALL_ATTEST_KEY\" } holding \"whsec_\" + base64".to_owned(),
            ),
        }
        for (i, s) in raw.previous.iter().flatten().enumerate() {
            keys.extend(self.attest_key(&format!("{path}.previous[{i}]"), s));
        }
        (self.errors.len() == errors_before).then(|| Arc::new(AttestKeys::new(keys)))
    }

    /// One key, written as Standard Webhooks writes it (what the app's library is given).
    fn attest_key(
        &mut self,
        path: &str,
        raw: &StringOrSecret,
    ) -> Option<crate::verify::mac::PreparedMac> {
        let secret = self.string_or_secret(path, raw)?;
        let is_whsec =
            std::str::from_utf8(secret.expose()).is_ok_and(|t| t.trim().starts_with("whsec_"));
        if !is_whsec {
            self.error(
                path,
                "must be \"whsec_\" followed by base64 of the key bytes (the form the standardwebhooks libraries take)".to_owned(),
            );
            return None;
        }
        match material(KeyFormat::WhsecBase64, Algorithm::Sha256, &secret) {
            Ok(KeyMaterial::Mac(mac)) => Some(mac),
            Ok(_) => None,
            Err(_) => {
                self.error(
                    path,
                    "is \"whsec_\" followed by something that is not base64 key bytes".to_owned(),
                );
                None
            }
        }
    }
}
