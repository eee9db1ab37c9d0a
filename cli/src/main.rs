//! `gridlease`: the tenant's command line.
//!
//! Exit codes: 0 success, 2 usage (bad flags), 3 user error (bad spec, wallet, balance, input),
//! 4 the chain refused (decoded revert), 5 network failure, 6 a result failed its check.

mod connect;
mod console;
mod ctx;
mod lease;
mod logs;
mod manage;
mod query;
mod result;
mod shell;
mod submit;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use gridlease_chain::{
    ChainError,
    deployments::DeploymentsError,
    wallet::{Password, WalletError},
};
use gridlease_primitives::spec::SpecError;

use crate::ctx::{Ctx, Output, UserError};

#[derive(Parser)]
#[command(
    name = "gridlease",
    version,
    about = "Rent GPUs on the gridlease market: submit jobs, watch them, get your money back",
    after_help = "Exit codes: 0 ok, 2 usage, 3 user error, 4 chain revert, 5 network failure, 6 a result failed its check."
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
    /// Internal networks the CLI may download results, specs and inputs from (comma-separated
    /// addresses or networks such as 127.0.0.0/8). Default: loopback when --rpc is on loopback
    /// (a devnet), else none: a URI a provider or another tenant named never reaches this
    /// machine's own ports or its LAN.
    #[arg(long, global = true, env = "GRIDLEASE_FETCH_ALLOW")]
    fetch_allow: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a job spec, sign one permit and create the order with its escrow in one transaction.
    Submit {
        /// The job spec (TOML; see examples/).
        spec: PathBuf,
        /// Follow the order: bids, lease, acknowledgement, result, challenges, close.
        #[arg(long)]
        wait: bool,
        /// Stop following after this long (the order stays on the market), e.g. 10m.
        #[arg(long, default_value = "1h")]
        timeout: String,
        /// With --wait: accept a verified built-in result at once (close the lease: the provider
        /// is paid up to the result and the rest of the escrow comes back).
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
    /// One order or lease: its state in words and what to run next.
    ///
    /// States: open, awaiting-award, awaiting-acknowledgement, running, deadline-grace, no-show,
    /// deadline-missed, live, lapsed (service), held (result posted, held until when, and what
    /// accepting pays), challenged (open chunk challenges), result-stands, accepted (collateral
    /// held until when), completed, closed, faulted (kind, refund, compensation), cancelled.
    Status {
        /// Order or lease id (0x...).
        id: String,
    },
    /// Your orders and leases, each with its state.
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
        /// Top up another tenant's order: its tenant's address, as a confirmation (the money,
        /// and any refund of it, are that tenant's).
        #[arg(long = "for", value_name = "TENANT")]
        tenant: Option<String>,
    },
    /// Cancel an open order (full refund).
    Cancel {
        /// Order id.
        id: String,
    },
    /// Close a running lease, saying first what it pays (a posted result: accept it).
    ///
    /// A batch job without a result pays the time used only if the provider acknowledged it and
    /// its deadline has not passed, else nothing; a posted result is accepted (its held pay goes
    /// to the provider, faults on it stay provable). When a no-show or a missed deadline is
    /// provable, proving it (`gridlease result ID --prove`) refunds everything too and slashes the
    /// provider.
    Close {
        /// Lease id.
        id: String,
        /// Only explain what closing would do now; send nothing.
        #[arg(long)]
        check: bool,
        /// Accept a result even while a fault on it is provable now (an unanswered challenge),
        /// which closing otherwise refuses: proving it refunds everything instead.
        #[arg(long, conflicts_with = "check")]
        force: bool,
    },
    /// Collect every credit your account has (market, staking, results module).
    ///
    /// The market's in each payment token (refunds your wallet could not receive, fault and keeper
    /// fees), staking's (slash compensation, reporter rewards) and the results module's ETH
    /// (challenge bonds that could not be sent).
    Withdraw {
        /// Only credits paid in this token (symbol or address).
        #[arg(long)]
        token: Option<String>,
        /// Send to this address instead of the wallet. Refused for an account the token froze:
        /// its credit only goes to itself, once the freeze is lifted.
        #[arg(long, value_name = "ADDRESS")]
        to: Option<String>,
    },
    /// Open orders, recent clearing prices per GPU class, and market parameters.
    Market,
    /// Serve the web console on loopback and print its URL (until Ctrl-C).
    ///
    /// The page (console/, built by `npm run build`) reads the market through --rpc and signs
    /// with the wallet in your browser (MetaMask, Rabby, ... found through EIP-6963).
    Console {
        /// Address to listen on (loopback only).
        #[arg(long, default_value = "127.0.0.1:7480")]
        listen: std::net::SocketAddr,
        /// The built bundle (default: console/dist of this checkout, or $GRIDLEASE_CONSOLE_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Read a lease's job logs (the tail of its standard error) from its provider's node.
    ///
    /// Tenant only: each request is signed (EIP-712) with the tenant's key for this lease, its
    /// provider and this market. The node is the one serving the lease's result, else the one the
    /// provider registered (its metadataURI), or --node.
    Logs {
        /// Lease id.
        id: String,
        /// The node's base URL (default: the node serving the lease's result, else the one the
        /// provider registered).
        #[arg(long, value_name = "URL")]
        node: Option<String>,
        /// Keep reading (every 2 s, a fresh signature each time) and print what the job writes,
        /// until its result is posted or the lease ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Run a command (by default a shell) in a lease's running container on its provider's node.
    ///
    /// Tenant only: the session is signed (EIP-712) with the tenant's key for this lease, its
    /// provider and this market. Without a command, on a terminal, you get an interactive shell
    /// (`exit` or ^D ends it); `gridlease shell ID -- CMD ARGS...` runs CMD with this process's
    /// input and output, and exits with its status. The command runs in the job's container, as
    /// its unprivileged user, with its limits: nothing of the host or of another lease.
    Shell {
        /// Lease id.
        id: String,
        /// The node's base URL (default: the node serving the lease's result, else the one the
        /// provider registered).
        #[arg(long, value_name = "URL")]
        node: Option<String>,
        /// Give the command a terminal even with a command or without one here.
        #[arg(short = 't', long, conflicts_with = "no_tty")]
        tty: bool,
        /// Give the command no terminal (its output then keeps stdout and stderr apart).
        #[arg(short = 'T', long)]
        no_tty: bool,
        /// The command and its arguments, after `--` (default: /bin/sh).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Reach a service lease served over TLS (`[service] tls = true`) from a local port.
    ///
    /// Each connection to the local address is carried to the service over TLS, to the key its
    /// provider's node bound on chain to the lease and no other: whatever else answers on that
    /// host and port is refused. No key of yours is needed (a service is public). Runs until
    /// Ctrl-C or the lease's end. `gridlease status ID` prints the key as `curl --pinnedpubkey`
    /// takes it.
    Connect {
        /// Lease id.
        id: String,
        /// The local address to listen on (port 0: any free one, printed).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: String,
        /// The service's host (default: the host of its provider's node URL).
        #[arg(long)]
        host: Option<String>,
        /// The service's port (default: its spec's; needed when the spec was pushed).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Download and verify a lease's result; challenge its chunks; prove faults.
    ///
    /// Verifies the download against the posted commitment (root and size, 1 KiB leaves) and
    /// checks built-in (matmul_i8) results exactly. When the provider does not serve it, chunks
    /// revealed on chain are assembled. `--challenge` forces a chunk of it on chain; `--prove`
    /// proves whatever fault is due.
    Result {
        /// Lease id.
        id: String,
        /// Read the result from a file instead of the URI the provider posted.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Save the downloaded result.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Prove every fault that is due (needs a wallet): a chunk challenge left unanswered past
        /// its response window (unavailable), a no-show, a missed deadline, a wrong or wrong-size
        /// built-in result. Refunds the lease and slashes the provider.
        #[arg(long, conflicts_with = "challenge")]
        prove: bool,
        /// Challenge a chunk of the posted result (data availability): bonds the module's
        /// challenge bond in ETH; the provider must reveal the chunk on chain within the response
        /// window, else `--prove` fails the result.
        #[arg(long)]
        challenge: bool,
        /// With --challenge: the chunk (1 KiB each, from 0; default: a random one).
        #[arg(long, requires = "challenge", value_name = "N")]
        chunk: Option<u64>,
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
    // Every command prints once and serves nothing: `gridlease list | head` ends quietly.
    gridlease_daemon::quiet_broken_pipe();
    let json = cli.json;
    match run(cli).await {
        Ok(out) => {
            out.print(json);
            if let Some(status) = out.exit_status() {
                ExitCode::from(status)
            } else if out.is_failed() {
                ExitCode::from(6)
            } else {
                ExitCode::SUCCESS
            }
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
        Cmd::Console { listen, dir } => {
            console::run(
                ctx,
                &cli.rpc,
                listen,
                dir.unwrap_or_else(console::default_dir),
            )
            .await
        }
        Cmd::Logs { id, node, follow } => logs::run(&ctx, &id, node.as_deref(), follow).await,
        Cmd::Shell {
            id,
            node,
            tty,
            no_tty,
            command,
        } => {
            let opts = shell::Opts {
                command,
                tty: (tty || no_tty).then_some(tty),
                node,
            };
            shell::run(&ctx, &id, opts).await
        }
        Cmd::Connect {
            id,
            listen,
            host,
            port,
        } => connect::run(&ctx, &id, connect::Opts { listen, host, port }).await,
        Cmd::Result {
            id,
            file,
            out,
            prove,
            challenge,
            chunk,
        } => {
            let opts = result::Opts {
                file,
                out,
                prove,
                challenge,
                chunk,
            };
            result::run(&ctx, &id, opts).await
        }
        Cmd::Topup { id, amount, tenant } => {
            manage::topup(&ctx, &id, &amount, tenant.as_deref()).await
        }
        Cmd::Cancel { id } => manage::cancel(&ctx, &id).await,
        Cmd::Close { id, check, force } => manage::close(&ctx, &id, check, force).await,
        Cmd::Withdraw { token, to } => {
            manage::withdraw(&ctx, token.as_deref(), to.as_deref()).await
        }
    }
}
