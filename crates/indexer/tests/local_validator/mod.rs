//! Shared by the tests that run against a real solana-test-validator (main_job,
//! indexer_gap_rpc): one started by `scripts/validator.sh` in a directory of its own, on ports
//! that are free, stopped on drop. Where there is no validator binary, `start` says so and the
//! test returns (passes) without it - unless VAULT_REQUIRE_VALIDATOR=1, which makes it fail.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A validator started by scripts/validator.sh in a directory of its own; stopped on drop.
pub struct LocalValidator {
    pub dir: tempdir::Dir,
    pub rpc_url: String,
    pub port: u16,
}

impl LocalValidator {
    fn script() -> PathBuf {
        repo_root().join("scripts/validator.sh")
    }

    /// A validator whose program upgrade authority is a new keypair (the key
    /// `initialize_config` accepts), returned with it; None (after saying so) when there is no
    /// validator to run.
    pub fn start_with_new_admin() -> Option<(Self, solana_keypair::Keypair)> {
        let keys = tempdir::Dir(std::env::temp_dir().join(format!(
            "vault-admin-{}-{}",
            std::process::id(),
            std::thread::current().name().unwrap_or("test").replace("::", "-")
        )));
        let admin = vault_chain::keypair_file::read_or_create(&keys.0.join("admin.json")).expect("admin keypair");
        let validator = Self::start(&keys.0.join("admin.json"))?;
        Some((validator, admin))
    }

    /// None (after saying so) when there is no validator to run. `authority` is the program's
    /// upgrade authority (a keypair file or a pubkey): the key `initialize_config` accepts.
    pub fn start(authority: &Path) -> Option<Self> {
        let found = Command::new(Self::script()).arg("find").output().expect("run scripts/validator.sh");
        if !found.status.success() {
            // libtest names each test's thread after the test (tokio's block_on runs there).
            let test = std::thread::current().name().unwrap_or("this test").to_string();
            // scripts/test.sh builds a validator first and sets this: there, none is a failure.
            if std::env::var_os("VAULT_REQUIRE_VALIDATOR").is_some_and(|v| v == "1") {
                panic!("{test}: no local validator, and VAULT_REQUIRE_VALIDATOR=1 requires one");
            }
            eprintln!(
                "SKIPPED {test}: no local validator here. `scripts/validator.sh ensure` builds one \
                 (~25 min, once per machine); the litesvm and gRPC tests cover the same code paths."
            );
            return None;
        }
        let port = free_port();
        let dir = tempdir::Dir(std::env::temp_dir().join(format!("vault-validator-{}-{port}", std::process::id())));
        let out = Command::new(Self::script())
            .args(["start", "--dir"])
            .arg(&dir.0)
            .arg("--upgrade-authority")
            .arg(authority)
            .env("VAULT_RPC_PORT", port.to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("start the validator");
        assert!(out.status.success(), "scripts/validator.sh start failed");
        Some(Self { dir, rpc_url: format!("http://127.0.0.1:{port}"), port })
    }
}

impl Drop for LocalValidator {
    fn drop(&mut self) {
        let _ = Command::new(Self::script())
            .args(["stop", "--dir"])
            .arg(&self.dir.0)
            .env("VAULT_RPC_PORT", self.port.to_string())
            .status();
    }
}

/// A port for the validator's RPC (and the next one for its websocket) that is free now.
pub fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 65_000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
