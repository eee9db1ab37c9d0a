//! What every command shares: the connected client, the deployment, the wallet, output.

use std::{path::PathBuf, sync::Mutex};

use alloy::{
    primitives::{Address, B256},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::{
    Market::{self, MarketInstance},
    MarketAdmin::{self, MarketAdminInstance},
    MarketLens::{self, MarketLensInstance},
    Results::{self, ResultsInstance},
    Staking::{self, StakingInstance},
};
use gridlease_chain::{
    Client, classify,
    deployments::{Deployments, TokenEntry},
    wallet::KeySource,
};
use gridlease_daemon::lock;
use gridlease_fetch::{AllowList, Fetcher, Limits};
use gridlease_primitives::units::{format_amount, format_duration, hourly_from_rate};

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
    /// An answer that ran but whose subject failed its check (a result that does not match its
    /// commitment, a wrong product): `"failed": true` in the JSON, and exit code 6.
    pub(crate) fn failed(human: String, mut json: serde_json::Value) -> Self {
        json["failed"] = true.into();
        Self { human, json }
    }

    /// Whether [`Output::failed`] made it.
    pub(crate) fn is_failed(&self) -> bool {
        self.json["failed"] == true
    }

    /// The exit status a command passes on as its own (`gridlease shell`: the remote command's).
    pub(crate) fn exit_status(&self) -> Option<u8> {
        self.json["exitStatus"]
            .as_u64()
            .and_then(|s| u8::try_from(s).ok())
    }

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
    /// Downloads what others name (results, specs, inputs): http(s) only, no internal address
    /// unless allowed ([`gridlease_fetch`]).
    pub(crate) fetcher: Fetcher,
    /// Every token the market has configured, and the last block read for them
    /// ([`Ctx::market_tokens`]).
    tokens: Mutex<Option<(Vec<TokenEntry>, u64)>>,
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
        let allow = match &cli.fetch_allow {
            Some(list) => AllowList::parse(
                &list
                    .split(',')
                    .filter(|e| !e.trim().is_empty())
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| UserError(format!("--fetch-allow: {e}")))?,
            None if rpc_on_loopback(&cli.rpc) => AllowList::loopback(),
            None => AllowList::default(),
        };
        Ok(Self {
            client,
            d,
            market,
            signer,
            json: cli.json,
            fetcher: Fetcher::new(allow, Limits::default()),
            tokens: Mutex::new(None),
        })
    }

    /// The market this context's requests to provider nodes are signed for.
    pub(crate) fn venue(&self) -> gridlease_fetch::Venue {
        gridlease_fetch::Venue {
            chain_id: self.client.chain_id,
            market: self.market,
        }
    }

    /// The market contract.
    pub(crate) fn market(&self) -> MarketInstance<&alloy::providers::DynProvider> {
        Market::new(self.market, &self.client.provider)
    }

    /// The market's cold paths (cancel, top-up, fault horizon): `MarketAdmin`'s ABI at the
    /// market's address, whose fallback runs it in the market's storage.
    pub(crate) fn admin(&self) -> MarketAdminInstance<&alloy::providers::DynProvider> {
        MarketAdmin::new(self.market, &self.client.provider)
    }

    /// The market's views.
    pub(crate) fn lens(&self) -> Result<MarketLensInstance<&alloy::providers::DynProvider>> {
        Ok(MarketLens::new(
            self.d.address("MarketLens")?,
            &self.client.provider,
        ))
    }

    /// The staking contract.
    pub(crate) fn staking(&self) -> Result<StakingInstance<&alloy::providers::DynProvider>> {
        Ok(Staking::new(
            self.d.address("Staking")?,
            &self.client.provider,
        ))
    }

    /// The results module at `address` (a lease's own module: its windows are the lease's).
    pub(crate) fn results_at(
        &self,
        address: Address,
    ) -> ResultsInstance<&alloy::providers::DynProvider> {
        Results::new(address, &self.client.provider)
    }

    /// Every results module the market ever added (the latest binds new leases); the
    /// deployment's `Results` when the market reports none.
    pub(crate) async fn modules(&self) -> Result<Vec<Address>> {
        let lens = self.lens()?;
        let count = lens.moduleCount().call().await.map_err(classify)?;
        let mut out = Vec::new();
        for i in 1..=count {
            let m = lens.module(i).call().await.map_err(classify)?;
            if !m.module.is_zero() && !out.contains(&m.module) {
                out.push(m.module);
            }
        }
        if out.is_empty() {
            out.push(self.d.address("Results")?);
        }
        Ok(out)
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
    pub(crate) async fn token_at(&self, address: Address) -> Result<TokenEntry> {
        if let Some(t) = self.d.tokens.iter().find(|t| t.address == address) {
            return Ok(t.clone());
        }
        if let Some(t) = self
            .market_tokens()
            .await?
            .into_iter()
            .find(|t| t.address == address)
        {
            return Ok(t);
        }
        // Not a market token (a stake token of another kind): its own metadata.
        let erc20 = gridlease_bindings::MockStablecoin::new(address, &self.client.provider);
        let decimals = erc20.decimals().call().await.map_err(classify)?;
        let symbol = erc20
            .symbol()
            .call()
            .await
            .unwrap_or_else(|_| address.to_string());
        Ok(TokenEntry {
            symbol,
            address,
            decimals,
        })
    }

    /// A payment token named by symbol (case-insensitive) or address: the deployment file's, or
    /// one governance configured on the market after it was written.
    pub(crate) async fn token(&self, symbol_or_address: &str) -> Result<TokenEntry> {
        if let Ok(t) = self.d.token(symbol_or_address) {
            return Ok(t);
        }
        let want = symbol_or_address.trim();
        let by_addr = want.parse::<Address>().ok();
        let all = self.market_tokens().await?;
        if let Some(t) = all
            .iter()
            .find(|t| Some(t.address) == by_addr || t.symbol.eq_ignore_ascii_case(want))
        {
            return Ok(t.clone());
        }
        let known: Vec<&str> = all.iter().map(|t| t.symbol.as_str()).collect();
        Err(UserError(format!(
            "unknown payment token \"{want}\"; the market knows: {}",
            known.join(", ")
        ))
        .into())
    }

    /// Every token the market has configured (allowed or not: a disabled token's credits stay
    /// withdrawable), the deployment file's first: read from the market's `TokenConfigured`
    /// events, once per command.
    pub(crate) async fn market_tokens(&self) -> Result<Vec<TokenEntry>> {
        if let Some((t, _)) = lock(&self.tokens).as_ref() {
            return Ok(t.clone());
        }
        self.read_market_tokens().await
    }

    /// [`Self::market_tokens`], read again from the block after the last read (the first read
    /// from the deployment): a console left running sees the tokens governance allows meanwhile.
    pub(crate) async fn read_market_tokens(&self) -> Result<Vec<TokenEntry>> {
        let (mut out, from) = match lock(&self.tokens).clone() {
            Some((t, read_to)) => (t, read_to + 1),
            None => (self.d.tokens.clone(), from_block(self)),
        };
        let to = head(self).await?;
        if to < from {
            return Ok(out);
        }
        let logs = gridlease_chain::logs::all(
            &self.client,
            &Filter::new()
                .address(self.market)
                .event_signature(Market::TokenConfigured::SIGNATURE_HASH),
            from,
            to,
        )
        .await?;
        for l in logs {
            let Ok(e) = l.log_decode::<Market::TokenConfigured>() else {
                continue;
            };
            let e = e.inner.data;
            if out.iter().any(|t| t.address == e.token) {
                continue;
            }
            let symbol = gridlease_bindings::MockStablecoin::new(e.token, &self.client.provider)
                .symbol()
                .call()
                .await
                .unwrap_or_else(|_| e.token.to_string());
            out.push(TokenEntry {
                symbol,
                address: e.token,
                decimals: e.decimals,
            });
        }
        *lock(&self.tokens) = Some((out.clone(), to));
        Ok(out)
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

/// `0.001 ETH` for an amount in wei.
pub(crate) fn eth(wei: alloy::primitives::U256) -> String {
    format!(
        "{} ETH",
        format_amount(wei.try_into().unwrap_or(u128::MAX), 18)
    )
}

/// A chain time for people: `2025-03-01 12:00:00 UTC (in 23h 59m)`.
pub(crate) fn when(ts: u64, now: u64) -> String {
    let rel = if ts > now {
        format!("in {}", format_duration(ts - now))
    } else if ts == now {
        "now".to_owned()
    } else {
        format!("{} ago", format_duration(now - ts))
    };
    format!("{} ({rel})", utc(ts))
}

/// `2025-03-01 12:00:00 UTC` (proleptic Gregorian, from the Unix time).
pub(crate) fn utc(ts: u64) -> String {
    let days = i64::try_from(ts / 86_400).unwrap_or(i64::MAX);
    let secs = ts % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Send `call` (simulated first); a revert comes back decoded, with its hint.
pub(crate) use gridlease_chain::send;

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
    Ok(gridlease_chain::logs::all(&ctx.client, filter, from_block(ctx), head).await?)
}

async fn head(ctx: &Ctx) -> Result<u64> {
    Ok(
        alloy::providers::Provider::get_block_number(&ctx.client.provider)
            .await
            .map_err(gridlease_chain::classify_rpc)?,
    )
}

/// Read a text file the user named; a failure is a user error naming the file.
pub(crate) fn read_file(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| UserError(format!("cannot read {}: {e}", path.display())).into())
}

/// Whether the JSON-RPC endpoint is on this machine (a devnet, whose nodes serve on loopback).
fn rpc_on_loopback(rpc: &str) -> bool {
    alloy::transports::http::reqwest::Url::parse(rpc)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// For a `matmul_i8` job with data inputs: download A and B (over http(s), as a provider will),
/// check them against the spec's roots (filling them in when the spec has none yet) and return
/// the job; `None` for other workloads. `what` names the inputs in errors.
pub(crate) async fn resolve_inputs(
    ctx: &Ctx,
    w: &mut gridlease_primitives::spec::Workload,
    what: &str,
) -> Result<Option<gridlease_workload::matmul::MatmulData>> {
    let gridlease_primitives::spec::Workload::MatmulI8Data { a_uri, b_uri, .. } = &*w else {
        return Ok(None);
    };
    let get = async |uri: &str| {
        ctx.fetcher
            .get(uri, None)
            .await
            .map_err(|e| UserError(format!("{what}: {e}")))
    };
    let (a, b) = (get(a_uri).await?, get(b_uri).await?);
    Ok(w.fill_roots(a, &b)
        .map_err(|e| UserError(format!("{what}: {e}")))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_02_the_cli_reaches_loopback_only_for_a_devnet_rpc() {
        for devnet in [
            "http://127.0.0.1:8545",
            "ws://localhost:8546",
            "http://[::1]:8545",
        ] {
            assert!(rpc_on_loopback(devnet), "{devnet}");
        }
        for real in ["https://rpc.example.org", "http://10.0.0.5:8545", "garbage"] {
            assert!(!rpc_on_loopback(real), "{real}");
        }
    }

    #[test]
    fn chain_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
        assert_eq!(when(100, 40), "1970-01-01 00:01:40 UTC (in 1m)");
        assert_eq!(when(40, 100), "1970-01-01 00:00:40 UTC (1m ago)");
    }

    #[test]
    fn wei_reads_as_ether() {
        assert_eq!(
            eth(alloy::primitives::U256::from(1_000_000_000_000_000u64)),
            "0.001 ETH"
        );
    }
}
