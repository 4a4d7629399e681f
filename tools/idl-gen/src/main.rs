//! `idl-gen <program-dir> <out.json>`: builds the program's IDL the way `anchor idl build` does
//! (Anchor's own IDL builder compiles the crate with `idl-build` and collects what it prints),
//! for machines without the Anchor CLI.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [program_dir, out] = args.as_slice() else {
        bail!("usage: idl-gen <program-dir> <out.json>");
    };
    let program_dir =
        PathBuf::from(program_dir).canonicalize().with_context(|| format!("program directory {program_dir}"))?;
    let idl =
        anchor_lang_idl::build::IdlBuilder::new().program_path(program_dir).build().context("building the IDL")?;
    let json = serde_json::to_string_pretty(&idl)?;
    std::fs::write(out, json + "\n").with_context(|| format!("writing {out}"))?;
    Ok(())
}
