//! Logging for every binary of the workspace: `RUST_LOG` when set, else `default` (e.g. "info"),
//! to stderr so that stdout carries only what a binary prints for its user.

pub fn init(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .with_writer(std::io::stderr)
        .init();
}
