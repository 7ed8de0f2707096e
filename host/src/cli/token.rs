//! `weir token`: a JWT the embedded demo's routes accept, signed with the demo key of the data dir
//! (`weir::demo::token`).

use crate::demo::token::{self, Claims};
use std::path::PathBuf;

/// `weir token` arguments.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The subject (`sub`): the consumer the demo's quota and cache count and scope by. The demo's quota gives
    /// the consumer `trial` 2 requests a minute, everyone else 60.
    #[arg(long, default_value = "demo-user")]
    pub sub: String,
    /// Lifetime in seconds (`exp` - `iat`).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl: u64,
    /// Another claim, NAME=VALUE (the value as JSON when it parses, else as a string); repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// The data dir of the demo whose key signs (the one `weir serve` with no --config uses).
    #[arg(long, value_name = "DIR", default_value = "./weir-data")]
    pub data_dir: PathBuf,
}

/// Prints the token.
pub(super) fn run(args: TokenArgs) -> Result<String, String> {
    let key = token::read_key(&args.data_dir).map_err(|e| e.to_string())?;
    let mut extra = serde_json::Map::new();
    for claim in &args.claims {
        token::add_claim(&mut extra, claim).map_err(|e| e.to_string())?;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(token::mint(&key, &Claims { subject: args.sub, ttl_seconds: args.ttl, extra }, now))
}
