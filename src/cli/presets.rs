//! `hookwall presets [NAME]`: every preset on a line, or one preset's facts, read from the
//! table the verifiers are built from.

use std::process::ExitCode;

use crate::verify::facts::{describe, PresetFacts};
use crate::verify::presets::{preset, NAMES};

/// The one-line form: name, first scheme's header, window, dedup key.
fn line(name: &str, facts: &PresetFacts) -> String {
    let header = facts
        .schemes
        .first()
        .map_or("-", |s| s.header.as_str())
        .to_owned();
    format!(
        "{name:<20} {header:<48} window={:<22} dedup={}",
        facts.window.as_deref().unwrap_or("none"),
        facts.dedup.as_deref().unwrap_or("none"),
    )
}

/// The whole description of one preset.
pub(crate) fn details(name: &str, facts: &PresetFacts) -> String {
    let mut out = format!("preset {name}\n");
    for (i, s) in facts.schemes.iter().enumerate() {
        let label = if facts.schemes.len() > 1 {
            format!("scheme {} of {}", i + 1, facts.schemes.len())
        } else {
            "scheme".to_owned()
        };
        out.push_str(&format!("  {label}\n"));
        out.push_str(&format!("    signature header: {}\n", s.header));
        out.push_str(&format!("    algorithm:        {}\n", s.algorithm));
        out.push_str(&format!("    signed payload:   {}\n", s.payload));
        out.push_str(&format!("    secret:           {}\n", s.secret));
        if let Some(t) = &s.timestamp {
            out.push_str(&format!("    timestamp:        {t}\n"));
        }
    }
    let or_none = |v: Option<&str>| v.unwrap_or("none").to_owned();
    out.push_str(&format!(
        "  window:      {}\n",
        or_none(facts.window.as_deref())
    ));
    let rule = match (&facts.dedup, facts.dedup_required) {
        (None, _) => "",
        (Some(_), true) => " (required: a delivery without it is 400 missing_dedup_key)",
        (Some(_), false) => " (a delivery without it is forwarded without dedup)",
    };
    out.push_str(&format!(
        "  dedup key:   {}{rule}\n",
        or_none(facts.dedup.as_deref())
    ));
    out.push_str(&format!(
        "  event field: {}\n",
        or_none(facts.event.as_deref())
    ));
    out.push_str(&format!("  handshake:   {}\n", or_none(facts.handshake)));
    if facts.needs_public_url {
        out.push_str("  needs:       public_url (the provider signs the URL it calls)\n");
    }
    out
}

pub(super) fn presets(name: Option<&str>) -> ExitCode {
    let Some(name) = name else {
        let mut text = String::new();
        for name in NAMES {
            if let Some(p) = preset(name, true) {
                text.push_str(&line(name, &describe(&p)));
                text.push('\n');
            }
        }
        text.push_str("generic              [route.verify] table: any HMAC-SHA1/256/512 header scheme you describe\n");
        super::print(&text);
        return ExitCode::SUCCESS;
    };
    // GitHub's legacy SHA-1 scheme is shown too: it is one setting away.
    match preset(name, true) {
        Some(p) => {
            super::print(&details(name, &describe(&p)));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "hookwall presets: no preset named {name:?}{} (presets: {})",
                crate::config::did_you_mean(name, NAMES.iter().copied()),
                NAMES.join(", ")
            );
            ExitCode::FAILURE
        }
    }
}
