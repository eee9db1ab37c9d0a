//! The results modules the node has met (protocol v2, `docs/protocol.md` §4): each one's windows,
//! read once (they are immutable), and the module ids the market gives leases.

use std::{collections::HashMap, sync::Mutex};

use alloy::primitives::Address;
use gridlease_bindings::{MarketLens, Results};
use gridlease_chain::{ChainError, Client, classify};
use gridlease_daemon::lock;

/// What the node needs of a results module: its windows (immutables: read once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// The module's address.
    pub address: Address,
    /// Seconds after a lease start within which it must be acknowledged.
    pub start_window: u64,
    /// Seconds after a batch lease's end its result is still accepted.
    pub deadline_grace: u64,
    /// Seconds to answer a challenge.
    pub response_window: u64,
}

/// The modules the node has met, by address, and module ids to addresses.
#[derive(Debug, Default)]
pub struct Modules {
    by_address: Mutex<HashMap<Address, Module>>,
    by_id: Mutex<HashMap<u8, Address>>,
}

impl Modules {
    /// Module `address`, read from the chain the first time.
    pub async fn get(&self, c: &Client, address: Address) -> Result<Module, ChainError> {
        if let Some(m) = lock(&self.by_address).get(&address) {
            return Ok(*m);
        }
        let r = Results::new(address, &c.provider);
        let m = Module {
            address,
            start_window: u64::from(r.startWindow().call().await.map_err(classify)?),
            deadline_grace: u64::from(r.deadlineGrace().call().await.map_err(classify)?),
            response_window: u64::from(r.responseWindow().call().await.map_err(classify)?),
        };
        lock(&self.by_address).insert(address, m);
        Ok(m)
    }

    /// The address of module `id` of the market (`LeaseStarted.module`), through its lens.
    pub async fn by_id(&self, c: &Client, lens: Address, id: u8) -> Result<Address, ChainError> {
        if let Some(a) = lock(&self.by_id).get(&id) {
            return Ok(*a);
        }
        let m = MarketLens::new(lens, &c.provider)
            .module(id)
            .call()
            .await
            .map_err(classify)?;
        if m.module == Address::ZERO {
            return Err(ChainError::User(format!(
                "the market has no results module {id}"
            )));
        }
        lock(&self.by_id).insert(id, m.module);
        Ok(m.module)
    }
}
