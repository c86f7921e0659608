//! `[telemetry]`: where spans are exported (CONTRACT §13).

use super::Compiler;
use crate::config::raw::RawTelemetry;
use crate::config::TelemetryConfig;

impl Compiler {
    pub(super) fn telemetry(&mut self, raw: Option<&RawTelemetry>) -> TelemetryConfig {
        let defaults = TelemetryConfig::default();
        let Some(raw) = raw else {
            return defaults;
        };
        // Read as OTEL_EXPORTER_OTLP_ENDPOINT is: the collector's base URL, to which the
        // signal's path is appended.
        let traces_url = raw.otlp_endpoint.as_deref().and_then(|base| {
            let ok = base.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
            });
            if !ok {
                self.error(
                    "telemetry.otlp_endpoint",
                    format!("{base:?} must be an http:// or https:// URL, e.g. \"http://127.0.0.1:4318\" (spans are POSTed to <otlp_endpoint>/v1/traces)"),
                );
                return None;
            }
            Some(format!("{}/v1/traces", base.trim_end_matches('/')))
        });
        let service_name = match raw.service_name.as_deref() {
            Some("") => {
                self.error("telemetry.service_name", "is empty".to_owned());
                defaults.service_name
            }
            Some(s) => s.to_owned(),
            None => defaults.service_name,
        };
        TelemetryConfig {
            traces_url,
            service_name,
            export_interval: self.nonzero_duration(
                "telemetry.export_interval",
                raw.export_interval.as_deref(),
                defaults.export_interval,
            ),
        }
    }
}
