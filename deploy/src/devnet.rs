//! `gridlease-deploy devnet`: anvil + the suite + funded demo accounts with keystores.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use anyhow::{Context, Result};
use gridlease_chain::{Client, deployments::Deployments};
use gridlease_primitives::units::format_amount;
use serde::{Deserialize, Serialize};

use crate::{
    anvil::{ANVIL_KEYS, Anvil},
    config::DeployConfig,
    deploy::{deploy, mint},
};

/// Demo roles and the anvil key index each uses (0 deploys and governs).
pub const ROLES: [(&str, usize); 9] = [
    ("tenant", 1),
    ("provider1", 2),
    ("provider1-operator", 3),
    ("provider2", 4),
    ("provider2-operator", 5),
    ("keeper", 6),
    ("provider3", 7),
    ("provider3-operator", 8),
    ("keeper2", 9),
];

/// Whole tokens minted to each role: the tenant gets every payment token (USDC, with a permit, and
/// the USDT-like one, paid by approval); providers the stake token (`stake`: the first), to stake.
fn funding(role: &str, stake: bool) -> u128 {
    match role {
        "tenant" => 10_000,
        "provider1" | "provider2" | "provider3" if stake => 5_000,
        _ => 0,
    }
}

/// What `devnet` set up, also written to `<dir>/devnet.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Devnet {
    /// RPC endpoint.
    pub rpc: String,
    /// Chain id.
    pub chain_id: u64,
    /// Where the deployments file is.
    pub deployments: PathBuf,
    /// Role -> address.
    pub accounts: BTreeMap<String, Address>,
    /// Role -> keystore file.
    pub keystores: BTreeMap<String, PathBuf>,
    /// File holding the keystores' password.
    pub password_file: PathBuf,
}

/// A running devnet: anvil stops when this is dropped.
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub anvil: Anvil,
    /// What was set up.
    pub info: Devnet,
}

/// A market on a fresh anvil (free loopback port; its log in `log` if given): the devnet
/// configuration deployed by anvil account 0, as which the returned client signs. [`start`]
/// builds the demo on it; tests that need only a market use it directly.
pub async fn market(block_time: u64, log: Option<&Path>) -> Result<(Anvil, Client, Deployments)> {
    let anvil = Anvil::start(block_time, log)?;
    let deployer: PrivateKeySigner = ANVIL_KEYS[0].parse().context("anvil key")?;
    let client = Client::connect(&anvil.url(), Some(deployer)).await?;
    let (deployments, _report) = deploy(&client, &DeployConfig::devnet(), None, false).await?;
    Ok((anvil, client, deployments))
}

/// Make `owner` a provider: register `operator` (which signs its consent) with `capacity` and no
/// collateral ceiling, mint `stake` units of the stake token to the owner (as governance, `gov`)
/// and stake them. For demos and tests.
pub async fn provider(
    gov: &Client,
    d: &Deployments,
    owner: PrivateKeySigner,
    operator: &PrivateKeySigner,
    capacity: gridlease_bindings::IStaking::Capacity,
    stake: u128,
) -> Result<()> {
    use alloy::primitives::{U256, aliases::U96};
    use gridlease_bindings::{MockStablecoin, Staking};
    use gridlease_chain::send;
    use gridlease_primitives::eip712::{OperatorConsent, staking_domain};
    let staking = d.address("Staking")?;
    let token = d
        .tokens
        .first()
        .context("the deployment has no token")?
        .address;
    let o = Client::connect(&gov.url, Some(owner.clone())).await?;
    let st = Staking::new(staking, &o.provider);
    let nonce = st.operatorNonce(operator.address()).call().await?;
    let deadline = o.now().await? + 3_600;
    let consent = OperatorConsent::new(owner.address(), operator.address(), nonce, deadline)
        .sign(&staking_domain(o.chain_id, staking), operator)?;
    send(st.register(
        operator.address(),
        capacity,
        "devnet provider".into(),
        U96::MAX,
        U256::from(deadline),
        consent.as_bytes().to_vec().into(),
    ))
    .await?;
    mint(gov, token, owner.address(), stake).await?;
    send(MockStablecoin::new(token, &o.provider).approve(staking, U256::from(stake))).await?;
    send(st.stake(U256::from(stake))).await?;
    Ok(())
}

/// Start anvil, deploy the devnet config, fund the demo accounts and write their keystores
/// under `dir` (password in `dir/password`). `root` holds `deployments/`.
pub async fn start(block_time: u64, dir: &Path, root: &Path) -> Result<Running> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (anvil, client, deployments) = market(block_time, Some(&dir.join("anvil.log"))).await?;
    let path = Deployments::default_path(root, client.chain_id);
    deployments
        .save(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;

    let password = "gridlease-devnet";
    let password_file = dir.join("password");
    write_private(&password_file, password)?;
    let ks_dir = dir.join("keystores");
    std::fs::create_dir_all(&ks_dir)?;
    let mut accounts = BTreeMap::new();
    let mut keystores = BTreeMap::new();
    for (role, idx) in ROLES {
        let key: PrivateKeySigner = ANVIL_KEYS[idx].parse().context("anvil key")?;
        let file = format!("{role}.json");
        let ks = ks_dir.join(&file);
        if !ks.exists() {
            PrivateKeySigner::encrypt_keystore(
                &ks_dir,
                &mut rand08::thread_rng(),
                key.to_bytes(),
                password,
                Some(&file),
            )
            .with_context(|| format!("cannot write keystore {}", ks.display()))?;
        }
        for (i, t) in deployments.tokens.iter().enumerate() {
            let amount = funding(role, i == 0) * 10u128.pow(u32::from(t.decimals));
            if amount > 0 {
                mint(&client, t.address, key.address(), amount).await?;
            }
        }
        accounts.insert(role.to_owned(), key.address());
        keystores.insert(role.to_owned(), ks);
    }
    let info = Devnet {
        rpc: anvil.url(),
        chain_id: client.chain_id,
        deployments: path,
        accounts,
        keystores,
        password_file,
    };
    let text = serde_json::to_string_pretty(&info)?;
    std::fs::write(dir.join("devnet.json"), text + "\n")?;
    Ok(Running { anvil, info })
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, format!("{text}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl Devnet {
    /// What to run next, for people.
    pub fn next_steps(&self, d: &Deployments, dir: &Path, cli: &str) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "gridlease devnet is up: {} (chain {})\n\n",
            self.rpc, self.chain_id
        ));
        for (name, c) in &d.contracts {
            s.push_str(&format!("  {name:<20} {}\n", c.address));
        }
        s.push_str(&format!(
            "  deployments file     {}\n\n",
            self.deployments.display()
        ));
        for (role, addr) in &self.accounts {
            let funded: Vec<String> = d
                .tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (funding(role, i == 0), &t.symbol))
                .filter(|(whole, _)| *whole > 0)
                .map(|(whole, symbol)| format!("{} {symbol}", format_amount(whole, 0)))
                .collect();
            let funded = if funded.is_empty() {
                String::new()
            } else {
                format!("  {}", funded.join(", "))
            };
            s.push_str(&format!("  {role:<20} {addr}{funded}\n"));
        }
        let ks = |r: &str| {
            self.keystores
                .get(r)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        s.push_str(&format!(
            "\nKeystores are in {}/keystores (password in {}).\n\nNext, in another shell:\n\n  export GRIDLEASE_RPC={}\n  {cli} --keystore {} --password file:{} submit examples/matmul.toml\n  {cli} list --tenant {}\n\nCtrl-C stops the devnet.\n",
            dir.display(),
            self.password_file.display(),
            self.rpc,
            ks("tenant"),
            self.password_file.display(),
            self.accounts.get("tenant").copied().unwrap_or_default(),
        ));
        s
    }
}
