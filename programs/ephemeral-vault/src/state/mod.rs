mod codec;
pub mod config;
pub mod seeds;
pub mod vault;

pub use config::*;
pub use seeds::*;
pub use vault::*;
