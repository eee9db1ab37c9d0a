//! Signed (off-chain, EIP-712) bids (`bidding.mode = "signed"`): the node signs its bid on an
//! auction with the operator key and keeps it under `<data_dir>/bids/<order id>.json` (written
//! durably, so a restart still serves it) for keepers, which fetch it at `GET /bids/<order id>`
//! from the provider's registered `metadataURI` and pass it to `Market.award`. A losing signed bid
//! costs no gas. Keepers only find the node when its `metadataURI` is its `http.public_url`:
//! [`check_registration`] says so at start and in `check`.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, B256},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use anyhow::{Result, bail};
use gridlease_bindings::{IStaking::Capacity, Staking};
use gridlease_chain::Client;
use gridlease_primitives::eip712::ServedBid;

/// Where the signed bid on order `id` is kept.
pub fn path(data_dir: &Path, id: B256) -> PathBuf {
    data_dir.join("bids").join(format!("{id}.json"))
}

/// Keep `bid` so that it is either absent or complete after a crash.
pub fn save(data_dir: &Path, bid: &ServedBid) -> std::io::Result<()> {
    use std::io::Write;
    let file = path(data_dir, bid.order);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(bid).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The signed bid kept for order `id`, if any.
pub fn load(data_dir: &Path, id: B256) -> Option<ServedBid> {
    let bytes = std::fs::read(path(data_dir, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `metadataURI` of `owner`'s latest `ProviderRegistered`/`ProviderUpdated` log since block
/// `from` (None: no such log).
pub async fn metadata_uri(
    client: &Client,
    staking: Address,
    owner: Address,
    from: u64,
) -> Result<Option<String>> {
    let filter = Filter::new()
        .address(staking)
        .event_signature(vec![
            Staking::ProviderRegistered::SIGNATURE_HASH,
            Staking::ProviderUpdated::SIGNATURE_HASH,
        ])
        .topic1(owner.into_word());
    let head = client.head().await?;
    let logs = gridlease_chain::logs::all(client, &filter, from, head).await?;
    Ok(logs.iter().rev().find_map(|l| {
        if let Ok(e) = Staking::ProviderUpdated::decode_log(&l.inner) {
            return Some(e.data.metadataURI);
        }
        Staking::ProviderRegistered::decode_log(&l.inner)
            .ok()
            .map(|e| e.data.metadataURI)
    }))
}

/// Signed bids reach keepers only through the registered `metadataURI`: it must be the node's
/// `public_url`; otherwise the error names the owner's command.
pub fn check_registration(
    registered: Option<&str>,
    public_url: &str,
    owner: Address,
    operator: Address,
    capacity: &Capacity,
) -> Result<()> {
    let have = registered.map(|u| u.trim_end_matches('/'));
    if have == Some(public_url) {
        return Ok(());
    }
    bail!(
        "bidding.mode = \"signed\": keepers fetch this node's bids from its provider's registered metadataURI, which is {}, not http.public_url {public_url}: the owner {owner} updates the registration with `gridlease-provider register --config <this file> --keystore OWNER.json` (metadata {public_url}, operator {operator}, GPU classes {:#x}, {} GPU(s), {} GiB)",
        registered.map_or_else(|| "unknown".to_owned(), |u| format!("\"{u}\"")),
        capacity.gpuClasses,
        capacity.gpuCount,
        capacity.vramGiB
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use gridlease_primitives::eip712::market_domain;

    #[test]
    fn a_kept_bid_is_read_back_and_recovers_the_operator() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = PrivateKeySigner::random();
        let domain = market_domain(31337, Address::repeat_byte(1));
        let id = B256::repeat_byte(9);
        assert!(load(dir.path(), id).is_none());
        let bid = ServedBid::sign(&domain, &signer, Address::repeat_byte(2), id, 77, 1_000)
            .expect("sign");
        save(dir.path(), &bid).expect("save");
        let back = load(dir.path(), id).expect("kept");
        assert_eq!(back, bid);
        assert_eq!(back.signer(&domain), Some(signer.address()));
    }

    #[test]
    fn the_registration_must_name_the_public_url() {
        let cap = Capacity {
            gpuClasses: 1,
            gpuCount: 1,
            vramGiB: 24,
        };
        let (o, op) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let url = "http://127.0.0.1:7311";
        assert!(check_registration(Some(url), url, o, op, &cap).is_ok());
        assert!(check_registration(Some("http://127.0.0.1:7311/"), url, o, op, &cap).is_ok());
        let e = check_registration(Some("devnet provider"), url, o, op, &cap)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("gridlease-provider register")
                && e.contains(&format!("metadata {url}, operator {op}")),
            "{e}"
        );
    }
}
