//! The deployment config: the devnet's parses, and a bad one says why.

use gridlease_deploy::config::DeployConfig;

#[test]
fn devnet_config_parses() {
    let c = DeployConfig::devnet();
    assert_eq!(c.tokens[0].symbol, "USDC");
    assert_eq!(c.tokens[0].address, None);
    assert!(
        c.tokens[0].permit,
        "USDC, with a permit, is the stake token"
    );
    assert_eq!(
        (c.tokens[1].symbol.as_str(), c.tokens[1].permit),
        ("USDT", false),
        "a USDT-like token, paid by approval"
    );
    assert!(u64::from(c.max_lease_duration) + 2 * c.fault_horizon < c.unbonding_period);
}

#[test]
fn bad_configs_say_why() {
    let e = DeployConfig::parse("").expect_err("no tokens");
    assert!(e.to_string().contains("[[tokens]]"));
    let e = DeployConfig::parse("[[tokens]]\nsymbol = \"X\"\n").expect_err("no address");
    assert!(e.to_string().contains("mock = true"));
    let e = DeployConfig::parse("[[tokens]]\nsymbol = \"X\"\nmock = true\ndecimals = 24\n")
        .expect_err("decimals");
    assert!(e.to_string().contains("at most 18"));
    let e = DeployConfig::parse(&format!(
        "[[tokens]]\nsymbol = \"X\"\naddress = \"{}\"\npermit = false\n",
        alloy::primitives::Address::repeat_byte(1)
    ))
    .expect_err("permit of an existing token");
    assert!(e.to_string().contains("read from the chain"), "{e:#}");
    let e = DeployConfig::parse("typo = 1\n[[tokens]]\nsymbol = \"X\"\nmock = true\n")
        .expect_err("unknown key");
    assert!(format!("{e:#}").contains("unknown field"));
    let e = DeployConfig::parse(
        "[results]\nstale_grace = \"0\"\n[[tokens]]\nsymbol = \"X\"\nmock = true\n",
    )
    .expect_err("zero grace");
    assert!(
        e.to_string()
            .contains("results.stale_grace must be more than zero"),
        "{e:#}"
    );
    let e = DeployConfig::parse(
        "[governance]\ntimelock_delay = \"1h\"\n[[tokens]]\nsymbol = \"X\"\nmock = true\n",
    )
    .expect_err("short timelock");
    assert!(e.to_string().contains("short_delay"), "{e:#}");
    let e = DeployConfig::parse(
        "[staking]\nunbonding_period = \"3d\"\n[[tokens]]\nsymbol = \"X\"\nmock = true\n",
    )
    .expect_err("unbonding too short");
    assert!(e.to_string().contains("fault_horizon"), "{e:#}");
}

/// Values the contracts' setters refuse are refused before anything is deployed: past them, a
/// deploy stopped with some contracts deployed and the market not configured.
#[test]
fn values_the_contracts_refuse_are_refused_before_any_deploy() {
    let token = "[[tokens]]\nsymbol = \"X\"\nmock = true\n";
    for (section, says) in [
        (
            "[market]\nprotocol_fee_bps = 1001\n",
            "market.protocol_fee_bps is 1001",
        ),
        (
            "[market]\nkeeper_fee_bps = 101\n",
            "market.keeper_fee_bps is 101",
        ),
        (
            "[market]\nmax_bid_window = \"8d\"\n",
            "market.max_bid_window",
        ),
        (
            "[market]\naward_grace = \"30s\"\n",
            "market.award_grace is 30 s",
        ),
        (
            "[market]\nlow_balance_window = \"8d\"\n",
            "market.low_balance_window",
        ),
        (
            "[market]\nmin_billing_period = \"2h\"\n",
            "at most one hour",
        ),
        (
            "[market]\nfault_horizon = \"31d\"\n[staking]\nunbonding_period = \"90d\"\n",
            "market.fault_horizon is",
        ),
        (
            "[staking]\nunbonding_period = \"91d\"\n",
            "staking.unbonding_period is",
        ),
    ] {
        let e = DeployConfig::parse(&format!("{section}{token}")).expect_err(section);
        assert!(format!("{e:#}").contains(says), "{section}: {e:#}");
    }
    DeployConfig::parse(token).expect("the defaults are within the bounds");
}
