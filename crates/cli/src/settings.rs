//! The one configuration approach of every binary: a setting comes from its command-line flag,
//! else its environment variable (clap reads both into one struct of `Option`s), else the TOML
//! file named by `--config`, else the binary's default.
//!
//! The flags struct and the file's struct use the same key names. [`layered`] serializes the
//! flags that were given (clap leaves the others `None`, which serialize to nothing), lays them
//! over the file's table key by key (nested tables merge, everything else is replaced), and
//! deserializes the result into the binary's settings type, whose serde defaults fill the rest.
//! Settings types refuse unknown keys (`#[serde(deny_unknown_fields)]`), so a misspelt key in a
//! file fails at start instead of being ignored.

use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

/// The TOML table in `path`, or an empty one for `None`.
pub fn read_table(path: Option<&Path>) -> anyhow::Result<Table> {
    let Some(path) = path else { return Ok(Table::new()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse::<Table>().with_context(|| format!("{} is not valid TOML", path.display()))
}

/// `flags` (what the command line and the environment gave) over the file at `file`, into `T`.
///
/// Errors: the file cannot be read or parsed, or the merged settings do not fit `T` (an unknown
/// key, a value of the wrong type); the message names the file.
pub fn layered<F: Serialize, T: DeserializeOwned>(flags: &F, file: Option<&Path>) -> anyhow::Result<T> {
    from_table(layered_table(flags, file)?, file)
}

/// The merged table of [`layered`], for a binary that takes some keys out before the rest
/// becomes its settings type.
pub fn layered_table<F: Serialize>(flags: &F, file: Option<&Path>) -> anyhow::Result<Table> {
    let mut table = read_table(file)?;
    let given = Table::try_from(flags).context("flags do not form a settings table")?;
    overlay(&mut table, given);
    Ok(table)
}

/// `table` as `T`; errors name `file` (where the keys came from).
pub fn from_table<T: DeserializeOwned>(table: Table, file: Option<&Path>) -> anyhow::Result<T> {
    let named = file.map(|p| p.display().to_string()).unwrap_or_else(|| "flags and environment".into());
    Value::Table(table).try_into().with_context(|| format!("settings from {named}"))
}

/// Lays `top` over `base`: tables merge recursively, any other value replaces.
fn overlay(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(below)), Value::Table(above)) => overlay(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Default)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        rpc_url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        batch_size: Option<u32>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        rpc_url: Option<String>,
        #[serde(default = "default_batch")]
        batch_size: u32,
        #[serde(default)]
        alerts: Alerts,
    }

    #[derive(Deserialize, Debug, PartialEq, Default)]
    #[serde(deny_unknown_fields)]
    struct Alerts {
        #[serde(default)]
        high_frequency_trades: u32,
        #[serde(default)]
        expired_session: bool,
    }

    fn default_batch() -> u32 {
        256
    }

    fn file(text: &str) -> tempfile_path::TempToml {
        tempfile_path::TempToml::new(text)
    }

    /// A file in the system's temp directory, removed on drop.
    mod tempfile_path {
        pub struct TempToml(pub std::path::PathBuf);
        impl TempToml {
            pub fn new(text: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "vault-cli-settings-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&path, text).expect("write temp file");
                Self(path)
            }
        }
        impl Drop for TempToml {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let f = file("rpc_url = \"http://file\"\n[alerts]\nhigh_frequency_trades = 7\n");
        let flags = Flags { rpc_url: Some("http://flag".into()), batch_size: None };
        let s: Settings = layered(&flags, Some(&f.0)).unwrap();
        assert_eq!(
            s,
            Settings {
                rpc_url: Some("http://flag".into()),
                batch_size: 256,
                alerts: Alerts { high_frequency_trades: 7, expired_session: false }
            }
        );
    }

    #[test]
    fn without_a_file_the_flags_alone_count() {
        let s: Settings = layered(&Flags { rpc_url: None, batch_size: Some(3) }, None).unwrap();
        assert_eq!(s.batch_size, 3);
        assert_eq!(s.rpc_url, None);
    }

    #[test]
    fn nested_tables_merge_key_by_key() {
        let mut base: Table = "[alerts]\nhigh_frequency_trades = 7\nexpired_session = true\n".parse().unwrap();
        let top: Table = "[alerts]\nexpired_session = false\n".parse().unwrap();
        overlay(&mut base, top);
        assert_eq!(base["alerts"]["high_frequency_trades"].as_integer(), Some(7));
        assert_eq!(base["alerts"]["expired_session"].as_bool(), Some(false));
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_the_file() {
        let f = file("rpc_ulr = \"http://typo\"\n");
        let err = layered::<_, Settings>(&Flags::default(), Some(&f.0)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(&f.0.display().to_string()), "{text}");
        assert!(text.contains("rpc_ulr"), "{text}");
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let missing = std::env::temp_dir().join("vault-cli-settings-does-not-exist.toml");
        assert!(layered::<_, Settings>(&Flags::default(), Some(&missing)).is_err());
    }
}
