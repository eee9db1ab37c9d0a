// The provider owner's page (see ../provider.ts for what it reads and sends).

import type { Address } from "viem";
import { app, beginRender, brief, chainName, field, finished, input, putPage } from "../app";
import type { Config } from "../config";
import { rpcOrigin } from "../config";
import { h, notice, put } from "../dom";
import { reverted } from "../jobs";
import { amount, tokenUnits } from "../market";
import {
  type Earnings,
  type ProviderState,
  earnings,
  providerState,
  register,
  stake,
  stakingCall,
  withdrawEarnings,
} from "../provider";

/** The provider owner's page: its stake and credits; register, stake, unbond, withdraw. */
export async function showProvider(c: Config, message?: HTMLElement): Promise<void> {
  const seq = beginRender();
  const heading = h("h2", {}, "Provider");
  if (!app.session?.account || app.session.chainId !== c.chainId) {
    putPage(
      seq,
      heading,
      notice("info", `Connect the provider's owner wallet (the cold key that stakes) on ${chainName(c)}.`),
    );
    return;
  }
  const owner = app.session.account as Address;
  const wallet = app.session.wallet.provider;
  let st: ProviderState;
  let earned: Earnings;
  try {
    [st, earned] = await Promise.all([providerState(app.client, c, owner), earnings(app.client, c, owner)]);
  } catch (e) {
    putPage(seq, heading, notice("error", `Cannot read the provider from ${rpcOrigin(c)}: ${brief(e)}`));
    return;
  }
  const status = h("div", { "aria-live": "polite", id: "provider-status" }, message);
  const stakeText = (v: bigint) => amount(c, st.stakeToken.address, v);
  const registered = st.operator !== "0x0000000000000000000000000000000000000000";
  const classes = c.gpuClasses.filter((_, i) => (st.capacity.gpuClasses >> BigInt(i)) & 1n);
  const run = (button: HTMLButtonElement, pending: string, action: () => Promise<string>) => {
    button.disabled = true;
    put(status, notice("info", pending));
    action()
      .then((done) => finished("#provider", notice("info", done), (m) => showProvider(c, m)))
      .catch((e) => {
        // WEB-04: nothing changed on chain; the form keeps what was typed.
        button.disabled = false;
        put(status, notice("error", reverted(e)));
      });
  };
  const units = (input: HTMLInputElement): bigint | undefined => {
    const v = tokenUnits(input.value, st.stakeToken.decimals);
    if (!v) {
      put(status, notice("error", `amount: "${input.value}" is not an amount of ${st.stakeToken.symbol} above zero (e.g. 100)`));
      return undefined;
    }
    return v;
  };

  const consent = h("textarea", { id: "consent", rows: "8", cols: "72", spellcheck: "false" }) as HTMLTextAreaElement;
  const metadata = input({ id: "metadata", value: "", placeholder: "https://gpu1.example.com" });
  const ceiling = input({ id: "ceiling", value: "all" });
  const registerButton = h("button", { type: "button" }, registered ? "Update registration" : "Register") as HTMLButtonElement;
  registerButton.addEventListener("click", () =>
    run(registerButton, "Checking the consent, then confirm in your wallet...", async () => {
      const r = await register(app.client, c, wallet, owner, consent.value, metadata.value.trim(), ceiling.value);
      return `${r.updated ? "Updated" : "Registered"} ${owner} with operator ${r.operator}.`;
    }),
  );
  const stakeAmount = input({ id: "stake-amount", inputmode: "decimal", placeholder: "amount" });
  const stakeButton = h("button", { type: "button" }, "Stake") as HTMLButtonElement;
  stakeButton.addEventListener("click", () => {
    const v = units(stakeAmount);
    if (v === undefined) return;
    run(stakeButton, `Staking ${stakeText(v)}...`, async () => {
      await stake(app.client, c, wallet, owner, st.stakeToken, v, (p, what) =>
        put(status, notice("info", `${what} It asks for ${amount(c, p.token.address, p.value)} to ${p.spender}.`)),
      );
      return `Staked ${stakeText(v)}.`;
    });
  });
  const unbondAmount = input({ id: "unbond-amount", inputmode: "decimal", placeholder: "amount" });
  const unbondButton = h("button", { type: "button" }, "Unbond") as HTMLButtonElement;
  unbondButton.addEventListener("click", () => {
    const v = units(unbondAmount);
    if (v === undefined) return;
    if (v > st.stake - st.locked) {
      put(status, notice("error", `only ${stakeText(st.stake - st.locked)} is free to unbond (${stakeText(st.locked)} is locked as collateral)`));
      return;
    }
    run(unbondButton, `Unbonding ${stakeText(v)}: confirm in your wallet...`, async () => {
      await stakingCall(app.client, c, wallet, owner, "unbond", [v]);
      return `Unbonding ${stakeText(v)}: withdrawable after ${st.unbondingPeriod} s.`;
    });
  });
  const released = st.unbonding > 0n && st.now >= st.releaseAt;
  const withdrawButton = h(
    "button",
    released ? { type: "button" } : { type: "button", disabled: "" },
    `Withdraw ${stakeText(st.unbonding)} unbonded`,
  ) as HTMLButtonElement;
  withdrawButton.addEventListener("click", () =>
    run(withdrawButton, "Withdrawing: confirm in your wallet...", async () => {
      await stakingCall(app.client, c, wallet, owner, "withdrawUnbonded", [owner]);
      return `Withdrew ${stakeText(st.unbonding)} to ${owner}.`;
    }),
  );
  const withdrawals = st.marketCredits
    .filter((m) => m.amount > 0n)
    .map((m) => {
      const b = h("button", { type: "button" }, `Withdraw ${amount(c, m.token.address, m.amount)} of earnings`) as HTMLButtonElement;
      b.addEventListener("click", () =>
        run(b, "Withdrawing: confirm in your wallet...", async () => {
          await withdrawEarnings(app.client, c, wallet, owner, m.token);
          return `Withdrew ${amount(c, m.token.address, m.amount)} to ${owner}.`;
        }),
      );
      return b;
    });
  // Slash compensation (Staking credits: a tenant's or reporter's share of a slash this owner
  // proved, or a withdrawal the token refused), withdrawn with `Staking.withdrawCredit`.
  if (st.stakingCredit > 0n) {
    const b = h("button", { type: "button" }, `Withdraw ${stakeText(st.stakingCredit)} of slash compensation`) as HTMLButtonElement;
    b.addEventListener("click", () =>
      run(b, "Withdrawing: confirm in your wallet...", async () => {
        await stakingCall(app.client, c, wallet, owner, "withdrawCredit", [owner]);
        return `Withdrew ${stakeText(st.stakingCredit)} to ${owner}.`;
      }),
    );
    withdrawals.push(b);
  }
  // Earnings in the tokens it has some in; none yet reads as 0 of the stake token.
  const credits = st.marketCredits.filter((m) => m.amount > 0n);
  putPage(
    seq,
    heading,
    status,
    h(
      "dl",
      { "aria-label": "Your provider" },
      h("dt", {}, "owner"),
      h("dd", { id: "owner" }, h("code", {}, owner)),
      h("dt", {}, "operator key"),
      h("dd", {}, registered ? h("code", {}, st.operator) : "not registered"),
      h("dt", {}, "GPUs"),
      h("dd", {}, registered ? `${st.capacity.gpuCount} x ${classes.join(", ") || "none"}, ${st.capacity.vramGiB} GiB` : "-"),
      h("dt", {}, "stake"),
      h("dd", { id: "stake" }, stakeText(st.stake)),
      h("dt", {}, "locked as collateral"),
      h("dd", {}, stakeText(st.locked)),
      h("dt", {}, "collateral ceiling"),
      h("dd", {}, st.ceiling === (1n << 96n) - 1n ? "all of the stake" : stakeText(st.ceiling)),
      h("dt", {}, "unbonding"),
      h(
        "dd",
        { id: "unbonding" },
        st.unbonding === 0n
          ? stakeText(0n)
          : `${stakeText(st.unbonding)}, ${released ? "withdrawable now" : `withdrawable from ${new Date(st.releaseAt * 1000).toISOString().replace(".000Z", "Z")}`}`,
      ),
      h("dt", {}, "leases won"),
      h("dd", { id: "leases-won" }, `${earned.leases}, of which ${earned.faulted} faulted`),
      h("dt", {}, "paid by closed leases"),
      h("dd", { id: "paid" }, earned.paid.map((p) => amount(c, p.token.address, p.amount)).join(", ")),
      h("dt", {}, "earnings to withdraw"),
      h(
        "dd",
        {},
        credits.length ? credits.map((m) => amount(c, m.token.address, m.amount)).join(", ") : stakeText(0n),
      ),
      h("dt", {}, "slash compensation to withdraw"),
      h("dd", {}, stakeText(st.stakingCredit)),
    ),
    h("h3", {}, registered ? "Update the registration" : "Register"),
    h(
      "p",
      {},
      "On the node's machine, `gridlease-provider consent` prints the operator key's consent to serve this wallet (with the node's GPUs): paste it here. The operator key never leaves the node; this wallet never leaves the browser.",
    ),
    field("Operator's consent (JSON)", consent),
    field("Metadata URI (the node's public URL)", metadata),
    field(`Collateral ceiling ("all", or ${st.stakeToken.symbol})`, ceiling),
    h("p", {}, registerButton),
    h("h3", {}, "Stake"),
    h("p", {}, field(`Amount (${st.stakeToken.symbol})`, stakeAmount), stakeButton),
    h("h3", {}, "Unbond and withdraw"),
    h(
      "p",
      {},
      field(`Amount (${st.stakeToken.symbol})`, unbondAmount),
      unbondButton,
      " ",
      st.unbonding > 0n ? withdrawButton : null,
    ),
    h("h3", {}, "Earnings"),
    withdrawals.length ? h("p", {}, ...withdrawals) : h("p", {}, "Nothing to withdraw yet."),
  );
}
