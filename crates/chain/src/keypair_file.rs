//! Keypair files in the Solana CLI's format (a JSON array of the 64 secret+public key bytes), as
//! the cleanup bot and the demo read and write them.

use std::path::Path;

use anyhow::Context;
use solana_keypair::Keypair;

pub fn read(path: &Path) -> anyhow::Result<Keypair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes: Vec<u8> = serde_json::from_str(&text)
        .with_context(|| format!("{}: a keypair file is a JSON array of 64 bytes", path.display()))?;
    Keypair::try_from(bytes.as_slice()).with_context(|| format!("{}: not a 64-byte keypair", path.display()))
}

/// The keypair in `path`, or a new one written there (owner-only permissions: it is a secret).
pub fn read_or_create(path: &Path) -> anyhow::Result<Keypair> {
    if path.exists() {
        return read(path);
    }
    let keypair = Keypair::new();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string(&keypair.to_bytes().to_vec())?;
    write_private(path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(keypair)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use solana_signer::Signer;

    #[test]
    fn a_created_keypair_reads_back_and_is_not_replaced() {
        let dir = std::env::temp_dir().join(format!("keypair-file-{}", std::process::id()));
        let path = dir.join("k.json");
        let created = super::read_or_create(&path).unwrap();
        assert_eq!(super::read(&path).unwrap().pubkey(), created.pubkey());
        assert_eq!(super::read_or_create(&path).unwrap().pubkey(), created.pubkey(), "an existing file is kept");
        std::fs::write(&path, "[1,2,3]").unwrap();
        assert!(super::read(&path).unwrap_err().to_string().contains("not a 64-byte keypair"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
