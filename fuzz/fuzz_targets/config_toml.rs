//! Configuration files (TOML): parse and check; an accepted config passes its own check again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use qcs_cli::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = Config::from_toml(text, Path::new("fuzz.toml")) {
            config.check().expect("an accepted config checks again");
        }
    }
});
