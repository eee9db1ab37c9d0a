//! What every command shares: the connected client, the deployment, the wallet, output.

use std::path::PathBuf;

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use anyhow::Result;
use gridlease_bindings::{
    Market::{self, MarketInstance},
    Results::{self, ResultsInstance},
};
use gridlease_core::{
    chain::Client,
    deployments::{Deployments, TokenEntry},
    units::{format_amount, hourly_from_rate},
    wallet::KeySource,
};

use crate::Cli;

/// A mistake in what the user asked for (exit code 3).
#[derive(Debug)]
pub(crate) struct UserError(pub(crate) String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Fail with a user error.
pub(crate) fn user<T>(msg: impl Into<String>) -> Result<T> {
    Err(UserError(msg.into()).into())
}

/// A command's result, for people and for scripts.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Human text (already printed progress is not repeated here).
    pub(crate) human: String,
    /// JSON.
    pub(crate) json: serde_json::Value,
}

impl Output {
    /// Print in the chosen form.
    pub(crate) fn print(&self, json: bool) {
        if json {
            println!("{}", self.json);
        } else if !self.human.is_empty() {
            print!("{}", self.human);
            if !self.human.ends_with('\n') {
                println!();
            }
        }
    }
}

/// Connected client + deployment + wallet.
pub(crate) struct Ctx {
    /// The client (with the wallet when one was given).
    pub(crate) client: Client,
    /// The deployment.
    pub(crate) d: Deployments,
    /// Market address.
    pub(crate) market: Address,
    /// The wallet.
    pub(crate) signer: Option<PrivateKeySigner>,
    /// JSON mode (no progress text).
    pub(crate) json: bool,
}

impl Ctx {
    /// Connect and load the deployment (and the wallet when flags name one).
    pub(crate) async fn new(cli: &Cli) -> Result<Self> {
        let wants_wallet = cli.keystore.is_some() || cli.private_key.is_some();
        let signer = if wants_wallet {
            let src = KeySource::from_flags(
                cli.keystore.clone(),
                cli.password.clone(),
                cli.private_key.as_deref(),
            )?;
            Some(src.load()?)
        } else {
            None
        };
        let client = Client::connect(&cli.rpc, signer.clone()).await?;
        let path = cli
            .deployments
            .clone()
            .unwrap_or_else(|| Deployments::default_path(&PathBuf::from("."), client.chain_id));
        let d = Deployments::load(&path, client.chain_id)?;
        let market = d.address("Market")?;
        Ok(Self {
            client,
            d,
            market,
            signer,
            json: cli.json,
        })
    }

    /// The market contract.
    pub(crate) fn market(&self) -> MarketInstance<&alloy::providers::DynProvider> {
        Market::new(self.market, &self.client.provider)
    }

    /// The results contract.
    pub(crate) fn results(&self) -> Result<ResultsInstance<&alloy::providers::DynProvider>> {
        Ok(Results::new(
            self.d.address("Results")?,
            &self.client.provider,
        ))
    }

    /// The wallet, or a user error saying how to give one.
    pub(crate) fn wallet(&self) -> Result<&PrivateKeySigner> {
        match &self.signer {
            Some(s) => Ok(s),
            None => user(
                "this command needs your wallet: --keystore PATH (with --password prompt|file:PATH|env:VAR) or --private-key env:VAR",
            ),
        }
    }

    /// A payment token by address (from the deployment).
    pub(crate) fn token_at(&self, address: Address) -> TokenEntry {
        self.d
            .tokens
            .iter()
            .find(|t| t.address == address)
            .cloned()
            .unwrap_or(TokenEntry {
                symbol: format!("{address}"),
                address,
                decimals: 18,
            })
    }

    /// Progress line (human mode only), on stderr so stdout stays the result.
    pub(crate) fn progress(&self, line: &str) {
        if !self.json {
            eprintln!("{line}");
        }
    }
}

/// Parse an order/lease id.
pub(crate) fn parse_id(s: &str) -> Result<B256> {
    s.trim().parse::<B256>().map_err(|_| {
        UserError(format!(
            "\"{s}\" is not an order id (0x followed by 64 hex digits)"
        ))
        .into()
    })
}

/// Parse an address.
pub(crate) fn parse_address(s: &str) -> Result<Address> {
    s.trim().parse::<Address>().map_err(|_| {
        UserError(format!(
            "\"{s}\" is not an address (0x followed by 40 hex digits)"
        ))
        .into()
    })
}

/// `2.5 USDC`.
pub(crate) fn money(units: u128, t: &TokenEntry) -> String {
    format!("{} {}", format_amount(units, t.decimals), t.symbol)
}

/// `2.4 USDC/h` for an 18-decimal per-second rate.
pub(crate) fn per_hour(rate: u128, t: &TokenEntry) -> String {
    let h = hourly_from_rate(rate, t.decimals).unwrap_or(0);
    format!("{} {}/h", format_amount(h, t.decimals), t.symbol)
}

/// Status name.
pub(crate) fn status_name(s: u8) -> &'static str {
    match s {
        1 => "open",
        2 => "leased",
        3 => "closed",
        4 => "cancelled",
        _ => "unknown",
    }
}

/// Block of the market deployment (log queries start there).
pub(crate) fn from_block(ctx: &Ctx) -> u64 {
    ctx.d.contracts.get("Market").map_or(0, |c| c.block)
}

/// Every log of `filter` from the market's deployment to the head, read in pages (public RPCs
/// cap the block range of one `eth_getLogs`).
pub(crate) async fn logs_since_deploy(
    ctx: &Ctx,
    filter: &alloy::rpc::types::Filter,
) -> Result<Vec<alloy::rpc::types::Log>> {
    let head = head(ctx).await?;
    Ok(gridlease_core::logs::all(&ctx.client, filter, from_block(ctx), head).await?)
}

/// The first log of `filter` since the market's deployment, read in pages like
/// [`logs_since_deploy`] and no further than it is found.
pub(crate) async fn first_since_deploy(
    ctx: &Ctx,
    filter: &alloy::rpc::types::Filter,
) -> Result<Option<alloy::rpc::types::Log>> {
    let head = head(ctx).await?;
    Ok(gridlease_core::logs::first(&ctx.client, filter, from_block(ctx), head).await?)
}

async fn head(ctx: &Ctx) -> Result<u64> {
    Ok(
        alloy::providers::Provider::get_block_number(&ctx.client.provider)
            .await
            .map_err(gridlease_core::chain::classify_rpc)?,
    )
}

/// Read a text file the user named; a failure is a user error naming the file.
pub(crate) fn read_file(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| UserError(format!("cannot read {}: {e}", path.display())).into())
}

/// Download `uri` (http(s)://, file:// or a path); a failure is a user error.
pub(crate) async fn fetch(uri: &str) -> Result<Vec<u8>> {
    Ok(gridlease_core::fetch::fetch(uri).await.map_err(UserError)?)
}

/// For a `matmul_i8` job with data inputs: download A and B, check them against the spec's roots
/// (filling them in when the spec has none yet) and return the job; `None` for other workloads.
/// `what` names the inputs in errors.
pub(crate) async fn resolve_inputs(
    w: &mut gridlease_core::spec::Workload,
    what: &str,
) -> Result<Option<gridlease_core::matmul::MatmulData>> {
    let gridlease_core::spec::Workload::MatmulI8Data { a_uri, b_uri, .. } = &*w else {
        return Ok(None);
    };
    let (a, b) = (fetch(a_uri).await?, fetch(b_uri).await?);
    Ok(w.resolve(a, &b)
        .map_err(|e| UserError(format!("{what}: {e}")))?)
}
