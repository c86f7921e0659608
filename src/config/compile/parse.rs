//! TOML text → the raw structs, reporting every problem serde would stop at: each value of
//! the wrong type and each unknown key, with its key path and where it is in the file.
//!
//! serde stops at the first value it cannot take, so each such value is reported and taken
//! out of the tree, and the tree deserialized again, until it goes through. Unknown keys
//! are collected on that last pass. Problems are then listed in file order.

use serde_path_to_error::Segment;
use toml::de::{DeTable, DeValue};

use super::{Compiler, ConfigError};
use crate::config::raw::{known_keys, RawConfig};
use crate::config::suggest;

impl Compiler {
    pub(super) fn parse(&mut self, text: &str) -> Option<RawConfig> {
        let mut tree = match text.parse::<toml::Table>() {
            Ok(tree) => tree,
            Err(e) => {
                self.errors.push(ConfigError {
                    position: e.span().map(|s| line_col(text, s.start)),
                    path: String::new(),
                    message: e.message().trim().to_owned(),
                });
                return None;
            }
        };
        let spans = DeTable::parse(text).ok();
        let position = |key: &str| {
            spans
                .as_ref()
                .and_then(|doc| position_of(text, doc.get_ref(), key))
        };
        let mut problems = Vec::new();
        let raw = loop {
            let mut unknown = Vec::new();
            let mut note =
                |path: serde_ignored::Path<'_>| unknown.push(path_to_key(&path.to_string()));
            let pass = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
                toml::Value::Table(tree.clone()),
                &mut note,
            ));
            match pass {
                Ok(raw) => {
                    for key in unknown {
                        problems.push(ConfigError {
                            position: position(&key),
                            message: format!("unknown key{}", unknown_key_hint(&key)),
                            path: key,
                        });
                    }
                    break Some(raw);
                }
                Err(e) => {
                    let path = e.path().clone();
                    let key = path_to_key(&path.to_string());
                    problems.push(ConfigError {
                        position: position(&key),
                        message: plain_types(e.into_inner().message().trim()),
                        path: key,
                    });
                    if !remove(&mut tree, &path) {
                        break None;
                    }
                }
            }
        };
        problems.sort_by_key(|p| p.position.unwrap_or((usize::MAX, 0)));
        self.errors.extend(problems);
        raw
    }
}

/// Gives a file position to every problem that has none: where its key is, else the
/// nearest table around it that is there (for a key that is missing).
pub(super) fn locate(text: &str, errors: &mut [ConfigError]) {
    let Ok(doc) = DeTable::parse(text) else {
        return;
    };
    for e in errors.iter_mut().filter(|e| e.position.is_none()) {
        let mut key = e.path.as_str();
        while !key.is_empty() {
            if let Some(at) = position_of(text, doc.get_ref(), key) {
                e.position = Some(at);
                break;
            }
            key = &key[..key.rfind(['.', '[']).unwrap_or(0)];
        }
    }
}

/// The closest known key, as a hint for an unknown one.
fn unknown_key_hint(key: &str) -> String {
    let (parent, name) = match key.rfind(['.', '[']) {
        Some(i) if key.as_bytes()[i] == b'.' => (&key[..i], &key[i + 1..]),
        Some(_) => (key, ""),
        None => ("", key),
    };
    suggest::hint(name, known_keys(parent).iter().copied())
}

/// serde's type names in the words of the config file.
fn plain_types(message: &str) -> String {
    message
        .replace("expected i64", "expected an integer")
        .replace("expected u64", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
}

/// Removes the key a type error was found under (the whole array, for an element), so the
/// next pass gets past it. `false` if there is nothing to remove.
fn remove(tree: &mut toml::Table, path: &serde_path_to_error::Path) -> bool {
    let segments: Vec<&Segment> = path.iter().collect();
    // The deepest table key on the path.
    let Some(last) = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Map { .. }))
    else {
        return false;
    };
    let mut table = tree;
    let mut i = 0;
    while i < last {
        let Segment::Map { key } = segments[i] else {
            return false;
        };
        let Some(mut value) = table.get_mut(key.as_str()) else {
            return false;
        };
        i += 1;
        // Array elements on the way (`route[0]`).
        while let Some(Segment::Seq { index }) = segments.get(i).filter(|_| i < last) {
            let toml::Value::Array(items) = value else {
                return false;
            };
            let Some(item) = items.get_mut(*index) else {
                return false;
            };
            value = item;
            i += 1;
        }
        let toml::Value::Table(inner) = value else {
            return false;
        };
        table = inner;
    }
    let Segment::Map { key } = segments[last] else {
        return false;
    };
    table.remove(key.as_str()).is_some()
}

/// One step of a key path: a table key or an array index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `route[1].verify.header` → `route`, `[1]`, `verify`, `header`.
fn steps(key: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, indices) = part.split_once('[').map_or((part, ""), |(n, i)| (n, i));
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        for index in indices.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// Where the key at `key` (a path such as `route[0].timeout`) is in the text.
fn position_of(text: &str, doc: &DeTable<'_>, key: &str) -> Option<(usize, usize)> {
    let mut table = doc;
    let mut here: Option<&DeValue<'_>> = None;
    let mut start = None;
    for step in steps(key) {
        match (step, here) {
            (Step::Key(name), None | Some(DeValue::Table(_))) => {
                if let Some(DeValue::Table(t)) = here {
                    table = t;
                }
                let (k, v) = table.iter().find(|(k, _)| k.get_ref() == name)?;
                start = Some(k.span().start);
                here = Some(v.get_ref());
            }
            (Step::Index(i), Some(DeValue::Array(items))) => {
                let item = items.get(i)?;
                start = Some(item.span().start);
                here = Some(item.get_ref());
            }
            _ => return None,
        }
    }
    start.map(|s| line_col(text, s))
}

/// `route.0.verify.foo` (serde_ignored's spelling) → `route[0].verify.foo`.
pub(super) fn path_to_key(dotted: &str) -> String {
    let mut out = String::new();
    // `?` marks an `Option` layer in serde_ignored's path; it is not a key.
    for seg in dotted.split('.').filter(|s| *s != "?") {
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}
