//! A litesvm world with the real `ephemeral_vault.so` deployed: the program's tests, its
//! compute-unit benchmark and the indexer's fixtures all run the program through this.

pub mod sessions;
pub mod tokens;
pub mod world;

pub use sessions::*;
pub use tokens::*;
pub use world::*;
