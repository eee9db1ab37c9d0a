//! `gridlease`: the tenant's command line.
//!
//! Exit codes: 0 success, 2 usage (bad flags), 3 user error (bad spec, wallet, balance, input),
//! 4 the chain refused (decoded revert), 5 network failure.

mod ctx;
mod manage;
mod query;
mod result;
mod submit;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use gridlease_core::{
    chain::ChainError, deployments::DeploymentsError, spec::SpecError, wallet::Password,
    wallet::WalletError,
};

use crate::ctx::{Ctx, Output, UserError};

#[derive(Parser)]
#[command(
    name = "gridlease",
    version,
    about = "Rent GPUs on the gridlease market: submit jobs, watch them, get your money back",
    after_help = "Exit codes: 0 ok, 2 usage, 3 user error, 4 chain revert, 5 network failure."
)]
struct Cli {
    /// JSON-RPC endpoint.
    #[arg(
        long,
        global = true,
        env = "GRIDLEASE_RPC",
        default_value = "http://127.0.0.1:8545"
    )]
    rpc: String,
    /// Deployments file (default: deployments/<chainId>.json).
    #[arg(long, global = true, env = "GRIDLEASE_DEPLOYMENTS")]
    deployments: Option<PathBuf>,
    /// Wallet keystore (Web3 Secret Storage v3, as `cast wallet new` writes).
    #[arg(long, global = true, env = "GRIDLEASE_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// Keystore password: prompt, file:PATH or env:VAR.
    #[arg(long, global = true, env = "GRIDLEASE_PASSWORD")]
    password: Option<Password>,
    /// Raw private key, only as env:VAR.
    #[arg(long, global = true)]
    private_key: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a job spec, sign one permit and create the order with its escrow in one transaction.
    Submit {
        /// The job spec (TOML; see examples/).
        spec: PathBuf,
        /// Follow the order: bids, lease, settlement, close.
        #[arg(long)]
        wait: bool,
        /// Stop following after this long (the order stays on the market), e.g. 10m.
        #[arg(long, default_value = "1h")]
        timeout: String,
        /// With --wait: accept a verified built-in result at once (close the lease, so payment
        /// stops at the result and the rest of the escrow comes back).
        #[arg(long, requires = "wait")]
        accept: bool,
        /// Only validate and price the spec; send nothing.
        #[arg(long)]
        check: bool,
        /// Where providers fetch the spec (default: a data: URI carrying it).
        #[arg(long, conflicts_with = "push")]
        spec_uri: Option<String>,
        /// Keep the spec private: the order names `gridlease:push`, and the spec goes, signed, to
        /// this provider node's HTTP API (e.g. http://gpu1.example.com:7311). Container jobs only.
        #[arg(long, value_name = "NODE_URL")]
        push: Option<String>,
    },
    /// One order or lease.
    Status {
        /// Order or lease id (0x...).
        id: String,
    },
    /// Your orders and leases.
    List {
        /// Whose (default: the wallet's address).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Add escrow to an open order or a running lease.
    Topup {
        /// Order or lease id.
        id: String,
        /// Amount in token units, e.g. 5 or 2.50.
        amount: String,
    },
    /// Cancel an open order (full refund).
    Cancel {
        /// Order id.
        id: String,
    },
    /// Close a running lease: pay the provider up to now and refund the rest.
    Close {
        /// Lease id.
        id: String,
    },
    /// Withdraw credits the market holds for you (refunds your wallet could not receive, keeper fees).
    Withdraw {
        /// Token symbol or address.
        #[arg(long, default_value = "USDC")]
        token: String,
    },
    /// Open orders, recent clearing prices per GPU class, and market parameters.
    Market,
    /// Download a lease's result, verify it against the on-chain commitment, and check built-in
    /// (matmul_i8) results exactly; `--prove` proves a wrong one on chain.
    Result {
        /// Lease id.
        id: String,
        /// Read the result from a file instead of the URI the provider posted.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Save the downloaded result.
        #[arg(long)]
        out: Option<PathBuf>,
        /// If a built-in result is wrong, send the fraud proof (needs a wallet).
        #[arg(long)]
        prove: bool,
    },
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<ChainError>() {
            return match c {
                ChainError::Network(_) => 5,
                ChainError::Revert(_) => 4,
                ChainError::User(_) => 3,
            };
        }
        if cause.is::<UserError>()
            || cause.is::<SpecError>()
            || cause.is::<WalletError>()
            || cause.is::<DeploymentsError>()
        {
            return 3;
        }
    }
    3
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(out) => {
            out.print(json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = exit_code(&e);
            if json {
                let v = serde_json::json!({ "error": format!("{e:#}"), "exitCode": code });
                println!("{v}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Output> {
    let ctx = Ctx::new(&cli).await?;
    match cli.cmd {
        Cmd::Submit {
            spec,
            wait,
            timeout,
            accept,
            check,
            spec_uri,
            push,
        } => {
            let opts = submit::Opts {
                wait,
                timeout,
                accept,
                check,
                spec_uri,
                push,
            };
            submit::run(&ctx, &spec, opts).await
        }
        Cmd::Status { id } => query::status(&ctx, &id).await,
        Cmd::List { tenant } => query::list(&ctx, tenant.as_deref()).await,
        Cmd::Market => query::market(&ctx).await,
        Cmd::Result {
            id,
            file,
            out,
            prove,
        } => result::run(&ctx, &id, result::Opts { file, out, prove }).await,
        Cmd::Topup { id, amount } => manage::topup(&ctx, &id, &amount).await,
        Cmd::Cancel { id } => manage::cancel(&ctx, &id).await,
        Cmd::Close { id } => manage::close(&ctx, &id).await,
        Cmd::Withdraw { token } => manage::withdraw(&ctx, &token).await,
    }
}
