//! The in-process chain: the one module of the workspace that names revm types, so a revm
//! upgrade touches only this file.

use alloy::{
    primitives::{Address, Bytes, Log, TxKind, U256},
    sol_types::{SolCall, SolEvent, SolInterface},
};
use revm::{
    Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext, MainnetEvm,
    context::{
        BlockEnv, CfgEnv, TxEnv,
        result::{ExecutionResult, Output},
    },
    database::{CacheDB, EmptyDB},
    primitives::hardfork::SpecId,
    state::AccountInfo,
};

/// Chain id of the in-process chain (the same as anvil's default).
pub const CHAIN_ID: u64 = 31_337;
/// Timestamp of the first block.
pub const GENESIS_TIME: u64 = 1_750_000_000;

type Db = CacheDB<EmptyDB>;
type Evm = MainnetEvm<Context<BlockEnv, TxEnv, CfgEnv, Db>>;

/// Outcome of one transaction.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Whether it succeeded.
    pub success: bool,
    /// Gas the sender pays: intrinsic + execution - refund (what a real receipt reports).
    pub gas_used: u64,
    /// Return data, or revert data.
    pub output: Bytes,
    /// Logs emitted (empty on revert).
    pub logs: Vec<Log>,
    /// Created contract, for deployments.
    pub created: Option<Address>,
}

impl Receipt {
    /// Panic with the decoded revert unless the transaction succeeded.
    #[track_caller]
    pub fn expect_success(self) -> Self {
        assert!(
            self.success,
            "transaction reverted: 0x{}",
            alloy::hex::encode(&self.output)
        );
        self
    }

    /// The custom error of interface `E` this transaction reverted with.
    #[track_caller]
    pub fn revert_as<E: SolInterface>(&self) -> E {
        assert!(
            !self.success,
            "expected a revert, the transaction succeeded"
        );
        E::abi_decode(&self.output).unwrap_or_else(|_| {
            panic!(
                "revert data is not an error of this interface: 0x{}",
                alloy::hex::encode(&self.output)
            )
        })
    }

    /// Every event of type `T` emitted, in order.
    pub fn events<T: SolEvent>(&self) -> Vec<T> {
        self.logs
            .iter()
            .filter_map(|log| T::decode_log(log).ok().map(|l| l.data))
            .collect()
    }

    /// The single event of type `T`.
    #[track_caller]
    pub fn event<T: SolEvent>(&self) -> T {
        let mut all = self.events::<T>();
        assert_eq!(
            all.len(),
            1,
            "expected exactly one {} event, got {}",
            T::SIGNATURE,
            all.len()
        );
        all.remove(0)
    }
}

/// A single-node chain in memory: deploy, call, read, move time.
pub struct Chain {
    evm: Evm,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// An empty Cancun chain at [`GENESIS_TIME`].
    pub fn new() -> Self {
        let mut cfg = CfgEnv::new_with_spec(SpecId::CANCUN);
        cfg.chain_id = CHAIN_ID;
        cfg.disable_nonce_check = true;
        let evm = Context::mainnet()
            .with_db(Db::default())
            .with_cfg(cfg)
            .modify_block_chained(|b: &mut BlockEnv| {
                b.timestamp = U256::from(GENESIS_TIME);
                b.number = U256::from(1);
                b.gas_limit = 60_000_000;
                b.basefee = 0;
            })
            .build_mainnet();
        Self { evm }
    }

    /// Give `who` some ether for gas (gas price is zero here, but keeps accounts realistic).
    pub fn fund(&mut self, who: Address) {
        self.evm.ctx.journaled_state.database.insert_account_info(
            who,
            AccountInfo {
                balance: U256::from(10u128.pow(24)),
                ..Default::default()
            },
        );
    }

    /// Current block timestamp.
    pub fn now(&self) -> u64 {
        self.evm.ctx.block.timestamp.saturating_to()
    }

    /// Move the clock forward `secs` seconds (and the block number by one).
    pub fn warp(&mut self, secs: u64) {
        let t = self.now() + secs;
        self.set_time(t);
    }

    /// Set the clock to `t` (it may not go backwards).
    pub fn set_time(&mut self, t: u64) {
        assert!(t >= self.now(), "time never goes backwards");
        self.evm.ctx.modify_block(|b| {
            b.timestamp = U256::from(t);
            b.number += U256::from(1);
        });
    }

    /// Run creation code (constructor arguments appended) from `from`, reverted or not.
    pub fn try_deploy(&mut self, from: Address, code: Bytes) -> Receipt {
        self.exec(from, TxKind::Create, code, true)
    }

    /// Deploy creation code (constructor arguments appended) from `from`.
    #[track_caller]
    pub fn deploy(&mut self, from: Address, code: Bytes) -> Address {
        let r = self.try_deploy(from, code);
        assert!(
            r.success,
            "deployment reverted: 0x{}",
            alloy::hex::encode(&r.output)
        );
        r.created.expect("a successful create returns an address")
    }

    /// Send `call` to `to` from `from` and commit its effects (a revert commits nothing but the
    /// nonce, as on a real chain).
    pub fn send<C: SolCall>(&mut self, from: Address, to: Address, call: C) -> Receipt {
        self.exec(from, TxKind::Call(to), call.abi_encode().into(), true)
    }

    /// Send `call` with a gas limit of `gas` (to probe out-of-gas behaviour).
    pub fn send_with_gas<C: SolCall>(
        &mut self,
        from: Address,
        to: Address,
        call: C,
        gas: u64,
    ) -> Receipt {
        self.exec_with_gas(from, TxKind::Call(to), call.abi_encode().into(), true, gas)
    }

    /// Send `call` with `value` wei attached.
    pub fn send_value<C: SolCall>(
        &mut self,
        from: Address,
        to: Address,
        call: C,
        value: u128,
    ) -> Receipt {
        self.exec_full(
            from,
            TxKind::Call(to),
            call.abi_encode().into(),
            true,
            30_000_000,
            U256::from(value),
        )
    }

    /// Wei held by `who`.
    pub fn eth_balance(&mut self, who: Address) -> U256 {
        use revm::database_interface::DatabaseRef;
        self.evm
            .ctx
            .journaled_state
            .database
            .basic_ref(who)
            .ok()
            .flatten()
            .map_or(U256::ZERO, |a| a.balance)
    }

    /// Send raw calldata.
    pub fn send_raw(&mut self, from: Address, to: Address, data: Bytes) -> Receipt {
        self.exec(from, TxKind::Call(to), data, true)
    }

    /// Run raw calldata from `from` without committing anything: what a daemon's `eth_call`
    /// simulation sees (success, logs) before it decides to send.
    pub fn simulate_raw(&mut self, from: Address, to: Address, data: Bytes) -> Receipt {
        self.exec(from, TxKind::Call(to), data, false)
    }

    /// Run `call` without committing and decode its return value.
    #[track_caller]
    pub fn view<C: SolCall>(&mut self, to: Address, call: C) -> C::Return {
        let r = self.exec(
            Address::ZERO,
            TxKind::Call(to),
            call.abi_encode().into(),
            false,
        );
        assert!(
            r.success,
            "view reverted: 0x{}",
            alloy::hex::encode(&r.output)
        );
        C::abi_decode_returns(&r.output).expect("view return decodes")
    }

    /// Size of the deployed code at `at`.
    pub fn code_size(&mut self, at: Address) -> usize {
        self.code(at).len()
    }

    /// The deployed code at `at` (empty for an account without code).
    pub fn code(&mut self, at: Address) -> Bytes {
        self.evm
            .ctx
            .journaled_state
            .database
            .cache
            .accounts
            .get(&at)
            .and_then(|a| a.info.code.as_ref())
            .map_or_else(Bytes::new, |c| {
                Bytes::copy_from_slice(c.original_byte_slice())
            })
    }

    fn exec(&mut self, from: Address, kind: TxKind, data: Bytes, commit: bool) -> Receipt {
        self.exec_with_gas(from, kind, data, commit, 30_000_000)
    }

    fn exec_with_gas(
        &mut self,
        from: Address,
        kind: TxKind,
        data: Bytes,
        commit: bool,
        gas: u64,
    ) -> Receipt {
        self.exec_full(from, kind, data, commit, gas, U256::ZERO)
    }

    fn exec_full(
        &mut self,
        from: Address,
        kind: TxKind,
        data: Bytes,
        commit: bool,
        gas: u64,
        value: U256,
    ) -> Receipt {
        let tx = TxEnv::builder()
            .caller(from)
            .kind(kind)
            .data(data)
            .value(value)
            .gas_limit(gas)
            .gas_price(0)
            .chain_id(Some(CHAIN_ID))
            .build_fill();
        let result = if commit {
            self.evm
                .transact_commit(tx)
                .expect("the transaction is valid")
        } else {
            self.evm
                .transact(tx)
                .expect("the transaction is valid")
                .result
        };
        let gas_used = result.tx_gas_used();
        match result {
            ExecutionResult::Success { logs, output, .. } => {
                let created = match &output {
                    Output::Create(_, addr) => *addr,
                    Output::Call(_) => None,
                };
                Receipt {
                    success: true,
                    gas_used,
                    output: output.into_data(),
                    logs,
                    created,
                }
            }
            ExecutionResult::Revert { output, .. } => Receipt {
                success: false,
                gas_used,
                output,
                logs: Vec::new(),
                created: None,
            },
            ExecutionResult::Halt { reason, .. } => Receipt {
                success: false,
                gas_used,
                output: Bytes::from(format!("halt: {reason:?}").into_bytes()),
                logs: Vec::new(),
                created: None,
            },
        }
    }
}
