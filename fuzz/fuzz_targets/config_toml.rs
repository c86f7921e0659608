//! Fuzzes config compilation: arbitrary UTF-8 text through `compile_str` must never panic.
//! Errors (of any number and kind) are the expected outcome for most inputs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// Secrets may be `{ file = "..." }`, which `compile_str` reads with `std::fs::read`.
/// Skip inputs that could name a special file (`/dev/zero`, `/proc/kmsg`, ...) so the
/// fuzzer cannot hang or exhaust memory reading one: no such path written out, and none
/// spelled through escapes (`\u002f`) or line-ending backslashes (`"/d\<newline>ev"`).
fn could_read_special_file(text: &str) -> bool {
    ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p))
        || text.contains("\\u")
        || text.contains("\\U")
        || text
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && w[1].is_ascii_whitespace())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if could_read_special_file(text) {
        return;
    }
    match hookwall::config::compile_str(text, Path::new("fuzz.toml")) {
        Ok(config) => {
            // Exercise the compiled value a little (Debug walks every field).
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty(), "compile failed without an error");
            let _ = errors.to_string();
        }
    }
});
