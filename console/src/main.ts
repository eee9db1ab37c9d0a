// The gridlease console: the market read from the chain, and the user's own wallet (found through
// EIP-6963) checked against the market's chain before anything is signed.

import {
  type Address,
  type Hex,
  type PublicClient,
  createPublicClient,
  encodeEventTopics,
  formatUnits,
  http,
  parseUnits,
  toHex,
} from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { type Config, contract, loadConfig, rpcOrigin } from "./config";
import { h, notice, put } from "./dom";
import {
  amount,
  clearedTable,
  clearingPrices,
  leaseLogs,
  openOrders,
  orderLogs,
  ordersTable,
  providers,
  providersTable,
} from "./market";
import { cancel, closeLease, jobsTable, lowBalanceWarnings, myJobs, reverted, topUp } from "./jobs";
import { type JobFacts, checkResult, jobFacts, phasesTable, proveFraud } from "./job";
import {
  type Earnings,
  type ProviderState,
  earnings,
  providerState,
  register,
  stake,
  stakingCall,
  withdrawEarnings,
} from "./provider";
import { type CheckedOrder, checkSpec, field, specToml, submitOrder } from "./newjob";
import { type Announced, discover, explain, safeIcon } from "./wallet";
import "./style.css";

const page = document.getElementById("page") as HTMLElement;
const walletBox = document.getElementById("wallet") as HTMLElement;

interface Session {
  wallet: Announced;
  account?: string;
  chainId?: number;
}

let session: Session | undefined;

/** An error in one line, without the request viem appends (its URL may carry an API key). */
function brief(e: unknown): string {
  const err = e as { shortMessage?: string; message?: string };
  return err.shortMessage ?? err.message ?? String(e);
}
let client: PublicClient;
let config: Config;

/** The page the address names: `#jobs`, `#new`, `#job/<id>`, else the market. */
async function route(): Promise<void> {
  stopWatch?.();
  const job = /^#job\/(0x[0-9a-fA-F]{64})$/.exec(location.hash)?.[1];
  if (location.hash === "#jobs") await showJobs(config);
  else if (location.hash === "#new") showNewJob(config);
  else if (job) await showJob(config, job as Hex);
  else if (location.hash === "#provider") await showProvider(config);
  else await showMarket(config);
}

/** The provider owner's page: its stake and credits; register, stake, unbond, withdraw. */
async function showProvider(c: Config, message?: HTMLElement): Promise<void> {
  const seq = ++renders;
  const heading = h("h2", {}, "Provider");
  if (!session?.account || session.chainId !== c.chainId) {
    putPage(
      seq,
      heading,
      notice("info", `Connect the provider's owner wallet (the cold key that stakes) on ${chainName(c)}.`),
    );
    return;
  }
  const owner = session.account as Address;
  const wallet = session.wallet.provider;
  let st: ProviderState;
  let earned: Earnings;
  try {
    [st, earned] = await Promise.all([providerState(client, c, owner), earnings(client, c, owner)]);
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
      .then((done) => showProvider(c, notice("info", done)))
      .catch((e) => {
        // WEB-04: nothing changed on chain; the form keeps what was typed.
        button.disabled = false;
        put(status, notice("error", reverted(e)));
      });
  };
  const units = (input: HTMLInputElement): bigint | undefined => {
    const t = input.value.trim();
    if (!/^\d+(\.\d+)?$/.test(t) || parseUnits(t, st.stakeToken.decimals) === 0n) {
      put(status, notice("error", `amount: "${input.value}" is not an amount of ${st.stakeToken.symbol} above zero (e.g. 100)`));
      return undefined;
    }
    return parseUnits(t, st.stakeToken.decimals);
  };

  const consent = h("textarea", { id: "consent", rows: "8", cols: "72", spellcheck: "false" }) as HTMLTextAreaElement;
  const metadata = input({ id: "metadata", value: "", placeholder: "https://gpu1.example.com" });
  const ceiling = input({ id: "ceiling", value: "all" });
  const registerButton = h("button", { type: "button" }, registered ? "Update registration" : "Register") as HTMLButtonElement;
  registerButton.addEventListener("click", () =>
    run(registerButton, "Checking the consent, then confirm in your wallet...", async () => {
      const r = await register(client, c, wallet, owner, consent.value, metadata.value.trim(), ceiling.value);
      return `${r.updated ? "Updated" : "Registered"} ${owner} with operator ${r.operator}.`;
    }),
  );
  const stakeAmount = input({ id: "stake-amount", inputmode: "decimal", placeholder: "amount" });
  const stakeButton = h("button", { type: "button" }, "Stake") as HTMLButtonElement;
  stakeButton.addEventListener("click", () => {
    const v = units(stakeAmount);
    if (v === undefined) return;
    run(stakeButton, `Staking ${stakeText(v)}...`, async () => {
      await stake(client, c, wallet, owner, st.stakeToken, v, (p, what) =>
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
      await stakingCall(client, c, wallet, owner, "unbond", [v]);
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
      await stakingCall(client, c, wallet, owner, "withdrawUnbonded", [owner]);
      return `Withdrew ${stakeText(st.unbonding)} to ${owner}.`;
    }),
  );
  const withdrawals = st.marketCredits
    .filter((m) => m.amount > 0n)
    .map((m) => {
      const b = h("button", { type: "button" }, `Withdraw ${amount(c, m.token.address, m.amount)} of earnings`) as HTMLButtonElement;
      b.addEventListener("click", () =>
        run(b, "Withdrawing: confirm in your wallet...", async () => {
          await withdrawEarnings(client, c, wallet, owner, m.token);
          return `Withdrew ${amount(c, m.token.address, m.amount)} to ${owner}.`;
        }),
      );
      return b;
    });
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
      h("dd", {}, st.marketCredits.map((m) => amount(c, m.token.address, m.amount)).join(", ")),
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

/** A job: its phases, and its result checked in this browser (and proven wrong from it). */
async function showJob(c: Config, id: Hex): Promise<void> {
  const seq = ++renders;
  const heading = h("h2", {}, `Job ${id.slice(0, 10)}...`);
  let facts: JobFacts;
  try {
    facts = await jobFacts(client, c, id);
  } catch (e) {
    putPage(seq, heading, notice("error", `Cannot read the job from ${rpcOrigin(c)}: ${brief(e)}`));
    return;
  }
  if (facts.phases.length === 0) {
    putPage(seq, heading, notice("error", `No order ${id} on this market.`));
    return;
  }
  const outcome = h("div", { "aria-live": "polite", id: "result-status" });
  const result: (HTMLElement | string)[] = [];
  const posted = facts.posted;
  if (posted) {
    const checkButton = h("button", { type: "button" }, "Download and check the result") as HTMLButtonElement;
    checkButton.addEventListener("click", async () => {
      checkButton.disabled = true;
      put(outcome, notice("info", "Downloading the result and checking it against the chain..."));
      try {
        const v = await checkResult(facts);
        if (v.kind === "mismatch") {
          put(outcome, notice("error", `The result does not match what the chain holds: ${v.why}. Challenge it: gridlease result ${id} --challenge`));
        } else if (v.kind === "matches" && v.freivalds === "not-matmul") {
          put(outcome, notice("info", `The ${posted.size} bytes match the root on chain (not a built-in job: there is no product to check).`));
        } else if (v.kind === "matches") {
          put(
            outcome,
            notice(
              "info",
              `Verified in this browser: the ${posted.size} bytes match the root on chain, and Freivalds' check with a random vector drawn here accepts the product (a wrong one passes with probability at most 1 in 2^61 - 1).`,
            ),
          );
        } else {
          const f = v.fraud;
          const prove = h("button", { type: "button" }, "Prove fraud") as HTMLButtonElement;
          prove.addEventListener("click", async () => {
            if (!session?.account || session.chainId !== c.chainId) {
              put(outcome, notice("error", `Connect a wallet on ${chainName(c)} first; nothing was sent.`), prove);
              return;
            }
            prove.disabled = true;
            try {
              const r = await proveFraud(client, c, session.wallet.provider, session.account as Address, facts, f);
              // The stake token is the deployment's first token (as the CLI reads it).
              const stake = c.deployments.tokens[0];
              put(
                outcome,
                notice(
                  "info",
                  `Proven: element (${f.i}, ${f.j}) is wrong on chain; the provider was slashed ${stake ? amount(c, stake.address, r.slashed) : `${r.slashed} units`} and ${amount(c, facts.token, r.refund)} refunded.`,
                ),
              );
              const again = await jobFacts(client, c, id);
              put(phases, phasesTable(c, again));
            } catch (e) {
              prove.disabled = false;
              put(outcome, notice("error", reverted(e)), prove);
            }
          });
          put(
            outcome,
            notice(
              "error",
              `WRONG: element (${f.i}, ${f.j}) of the product is ${f.claimed}; A x B gives ${f.correct}. The proof is ready: a leaf of ${(f.leaf.length - 2) / 2} bytes and ${f.proof.length} sibling hashes.`,
            ),
            prove,
          );
        }
      } catch (e) {
        put(outcome, notice("error", (e as Error).message));
      } finally {
        checkButton.disabled = false;
      }
    });
    result.push(
      h("h3", {}, "Result"),
      h(
        "dl",
        {},
        h("dt", {}, "root"),
        h("dd", {}, h("code", {}, posted.root)),
        h("dt", {}, "size"),
        h("dd", {}, `${posted.size} bytes`),
        h("dt", {}, "served at"),
        h("dd", { class: "uri" }, posted.uri),
      ),
      checkButton,
    );
  }
  const phases = h("div", {}, phasesTable(c, facts));
  putPage(
    seq,
    heading,
    h("p", {}, h("code", {}, id)),
    h("h3", {}, "Phases"),
    phases,
    ...result,
    outcome,
  );
}

function chainName(c: Config): string {
  return `chain ${c.chainId}`;
}

async function refreshWallet(c: Config): Promise<void> {
  if (!session) return;
  const { provider, info } = session.wallet;
  try {
    const [chainHex, accounts] = await Promise.all([
      provider.request({ method: "eth_chainId" }) as Promise<string>,
      provider.request({ method: "eth_accounts" }) as Promise<string[]>,
    ]);
    session.chainId = Number.parseInt(chainHex, 16);
    session.account = accounts[0];
  } catch (e) {
    put(walletBox, notice("error", explain(e)));
    return;
  }
  if (session.chainId !== c.chainId) {
    const button = h("button", { type: "button" }, `Switch to ${chainName(c)}`);
    button.addEventListener("click", async () => {
      try {
        await provider.request({
          method: "wallet_switchEthereumChain",
          params: [{ chainId: `0x${c.chainId.toString(16)}` }],
        });
        await refreshWallet(c);
      } catch (e) {
        put(walletBox, notice("error", explain(e)), button);
      }
    });
    // WEB-04: nothing is signed on the wrong chain; the page says so and how to fix it.
    put(
      walletBox,
      notice(
        "error",
        `${info.name} is on chain ${session.chainId}, this market is on ${chainName(c)}: switch networks before signing anything.`,
      ),
      button,
    );
    return;
  }
  put(
    walletBox,
    h("span", { class: "account" }, `${info.name}: `, h("code", {}, session.account ?? "no account")),
  );
  if (location.hash === "#jobs") await showJobs(c);
  if (location.hash === "#new") showNewJob(c);
  if (location.hash === "#provider") await showProvider(c);
}

/** Renders started: a page read from the chain is shown only if no newer one started meanwhile
 * (a slow read of the market never covers the page the user went to since). */
let renders = 0;

function putPage(seq: number, ...children: (Node | string | null | undefined | false)[]): void {
  if (seq === renders) put(page, ...children);
}

/** Set while a My jobs action waits on the wallet or the chain: the live refresh holds off. */
let jobsBusy = false;
/** Stops the live refresh of My jobs (another page, or a newer render). */
let stopWatch: (() => void) | undefined;

/**
 * Every 2 s, when a block came: `refresh` if the market or the results module logged anything
 * about `ids`, or a new order of `account`, since block `from`. Reads only logs, not each job.
 */
function watchJobs(c: Config, account: Address, ids: Hex[], from: bigint, refresh: () => void): void {
  stopWatch?.();
  let last = from;
  let stopped = false;
  const market = contract(c, "Market").address;
  const results = contract(c, "Results").address;
  const mine = encodeEventTopics({ abi: marketAbi, eventName: "OrderCreated", args: { tenant: account } });
  const timer = setInterval(async () => {
    if (stopped || jobsBusy || location.hash !== "#jobs") return;
    try {
      const head = await client.getBlockNumber();
      if (head <= last) return;
      const range = { fromBlock: toHex(last + 1n), toBlock: toHex(head) };
      const [touching, created] = await Promise.all([
        ids.length
          ? (client.request({
              method: "eth_getLogs",
              params: [{ address: [market, results], topics: [null, ids], ...range }],
            } as never) as Promise<unknown[]>)
          : Promise.resolve([]),
        client.request({
          method: "eth_getLogs",
          params: [{ address: market, topics: mine, ...range }],
        } as never) as Promise<unknown[]>,
      ]);
      last = head;
      if (!stopped && (touching.length > 0 || created.length > 0)) {
        stopWatch?.();
        refresh();
      }
    } catch {
      // The RPC did not answer: the next tick asks again.
    }
  }, 2_000);
  stopWatch = () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** My jobs, with `message` (what the last action did) above the table. */
async function showJobs(c: Config, message?: HTMLElement): Promise<void> {
  const seq = ++renders;
  const heading = h("h2", {}, "My jobs");
  if (!session?.account || session.chainId !== c.chainId) {
    putPage(seq, heading, notice("info", `Connect a wallet on ${chainName(c)} to see your orders and leases.`));
    return;
  }
  const account = session.account as Address;
  const wallet = session.wallet.provider;
  const status = h("div", { "aria-live": "polite", id: "jobs-status" }, message);
  // Runs `action`; on failure nothing changed on chain (WEB-04): the page says why, and the
  // button works again. The live refresh waits while it runs.
  const attempt = (button: HTMLButtonElement, pending: string, action: () => Promise<HTMLElement>) => {
    button.disabled = true;
    jobsBusy = true;
    put(status, notice("info", pending));
    action()
      .then((done) => {
        jobsBusy = false;
        return showJobs(c, done);
      })
      .catch((e) => {
        jobsBusy = false;
        button.disabled = false;
        put(status, notice("error", reverted(e)));
      });
  };
  try {
    const [jobs, head] = await Promise.all([myJobs(client, c, account), client.getBlock({ blockTag: "latest" })]);
    // Live: what the chain logs about these jobs (or a new order of this account) re-reads them,
    // keeping the last message and any amount typed.
    watchJobs(c, account, jobs.map((j) => j.id), head.number, () => {
      const typed = new Map(
        [...page.querySelectorAll<HTMLInputElement>("input[aria-label^='Top-up amount']")].map((i) => [
          i.getAttribute("aria-label"),
          i.value,
        ]),
      );
      const last = document.getElementById("jobs-status")?.firstElementChild as HTMLElement | null;
      void showJobs(c, last ?? undefined).then(() => {
        for (const i of page.querySelectorAll<HTMLInputElement>("input[aria-label^='Top-up amount']")) {
          i.value = typed.get(i.getAttribute("aria-label")) ?? i.value;
        }
      });
    });
    putPage(
      seq,
      heading,
      ...lowBalanceWarnings(c, jobs, Number(head.timestamp)),
      status,
      jobsTable(c, jobs, {
        cancel: (job, button) =>
          attempt(button, `Cancelling ${job.id}: confirm in your wallet...`, async () => {
            const refund = await cancel(client, c, wallet, account, job);
            return notice("info", `Cancelled ${job.id}; refunded ${amount(c, job.token, refund)}.`);
          }),
        topUp: (job, input, button) => {
          const token = c.deployments.tokens.find((t) => t.address.toLowerCase() === job.token.toLowerCase());
          let units: bigint;
          try {
            if (!/^\d+(\.\d+)?$/.test(input.value.trim())) throw new Error();
            units = parseUnits(input.value.trim(), token?.decimals ?? 18);
          } catch {
            put(status, notice("error", `amount: "${input.value}" is not an amount of ${token?.symbol ?? "the token"} (e.g. 1.5)`));
            return;
          }
          if (units === 0n) {
            put(status, notice("error", "amount: must be more than zero"));
            return;
          }
          attempt(button, `Topping up ${job.id} by ${amount(c, job.token, units)}...`, async () => {
            const escrow = await topUp(client, c, wallet, account, job, units, (what) =>
              put(status, notice("info", what)),
            );
            return notice(
              "info",
              `Topped up ${job.id} by ${amount(c, job.token, units)}; escrow now ${amount(c, job.token, escrow)}.`,
            );
          });
        },
        close: (job, button) =>
          attempt(button, `Closing ${job.id}: confirm in your wallet...`, async () => {
            const r = await closeLease(client, c, wallet, account, job);
            return notice(
              "info",
              `Closed ${job.id}: paid ${amount(c, job.token, r.paid)}, refunded ${amount(c, job.token, r.refund)}.`,
            );
          }),
      }),
    );
  } catch (e) {
    putPage(seq, heading, notice("error", `Cannot read your orders from ${rpcOrigin(c)}: ${brief(e)}`));
  }
}

function input(attrs: Record<string, string>): HTMLInputElement {
  return h("input", attrs) as HTMLInputElement;
}

/** New job: the form (or TOML), checked by the CLI's code, then one signature and one transaction. */
function showNewJob(c: Config): void {
  const seq = ++renders;
  const tokens = c.deployments.tokens;
  const name = input({ id: "f-name", value: "matmul from the console" });
  const n = input({ id: "f-n", type: "number", min: "1", value: "256" });
  const seed = input({ id: "f-seed", type: "number", min: "0", value: "42" });
  const gpu = h(
    "select",
    { id: "f-gpu" },
    h("option", { value: "any" }, "any"),
    ...c.gpuClasses.map((g) => h("option", { value: g }, g)),
  ) as HTMLSelectElement;
  const gpuCount = input({ id: "f-count", type: "number", min: "1", value: "1" });
  const perHour = input({ id: "f-price", value: "2.00", inputmode: "decimal" });
  const duration = input({ id: "f-duration", value: "10m" });
  const bidWindow = input({ id: "f-window", value: "30s" });
  const collateral = input({ id: "f-collateral", value: "10" });
  const token = h(
    "select",
    { id: "f-token" },
    ...tokens.map((t) => h("option", { value: t.symbol }, t.symbol)),
  ) as HTMLSelectElement;
  const instant = input({ id: "f-instant", type: "checkbox" });
  const toml = h("textarea", { id: "spec", rows: "18", cols: "72", spellcheck: "false" }) as HTMLTextAreaElement;
  const checkButton = h("button", { type: "button" }, "Check") as HTMLButtonElement;
  const submitButton = h("button", { type: "button", disabled: "" }, "Submit") as HTMLButtonElement;
  const status = h("div", { "aria-live": "polite", id: "new-status" });
  let checked: CheckedOrder | undefined;
  // Any change to the spec makes the last check stale: Submit waits for a new one.
  const stale = () => {
    checked = undefined;
    submitButton.disabled = true;
  };
  toml.addEventListener("input", stale);
  const fill = () => {
    stale();
    toml.value = specToml({
      name: name.value,
      n: Number(n.value),
      seed: Number(seed.value),
      gpu: gpu.value,
      gpuCount: Number(gpuCount.value),
      maxPerHour: perHour.value,
      maxDuration: duration.value,
      bidWindow: bidWindow.value,
      collateral: collateral.value,
      token: token.value,
      instant: instant.checked,
    });
  };
  fill();
  const fillButton = h("button", { type: "button" }, "Write the form into the spec");
  fillButton.addEventListener("click", fill);
  const summary = (o: CheckedOrder) =>
    h(
      "div",
      { class: "summary" },
      h("pre", {}, o.human),
      h(
        "p",
        {},
        "Submitting signs one permit for ",
        h("strong", { id: "permit-amount" }, `${formatUnits(BigInt(o.order.deposit), o.token.decimals)} ${o.token.symbol}`),
        " to the market ",
        h("code", {}, contract(c, "Market").address),
        " (the escrow; what the lease does not spend comes back), then one transaction.",
      ),
    );
  checkButton.addEventListener("click", async () => {
    checkButton.disabled = true;
    submitButton.disabled = true;
    put(status, notice("info", "Checking the spec..."));
    try {
      checked = await checkSpec(toml.value);
      put(status, summary(checked));
      submitButton.disabled = false;
    } catch (e) {
      checked = undefined;
      put(status, notice("error", (e as Error).message));
    } finally {
      checkButton.disabled = false;
    }
  });
  submitButton.addEventListener("click", async () => {
    if (!checked) return;
    if (!session?.account || session.chainId !== c.chainId) {
      put(status, notice("error", `Connect a wallet on ${chainName(c)} first; nothing was signed.`));
      return;
    }
    const order = checked;
    submitButton.disabled = true;
    checkButton.disabled = true;
    const step = h("div", {});
    put(status, summary(order), step);
    try {
      const done = await submitOrder(
        client,
        c,
        session.wallet.provider,
        session.account as Address,
        order,
        (p, what) => {
          put(
            step,
            notice(
              "info",
              `${what} It asks for ${formatUnits(p.value, p.token.decimals)} ${p.token.symbol} to ${p.spender}.`,
            ),
          );
        },
      );
      put(
        status,
        notice("info", `Ordered ${done.orderId} (transaction ${done.tx}, block ${done.block}).`),
        h("p", {}, h("a", { href: "#jobs" }, "Follow it in My jobs")),
      );
    } catch (e) {
      // WEB-04: nothing was created; the spec and its check stand, and Submit can be pressed again.
      put(status, summary(order), notice("error", reverted(e)));
      submitButton.disabled = false;
    } finally {
      checkButton.disabled = false;
    }
  });
  putPage(
    seq,
    h("h2", {}, "New job"),
    h(
      "p",
      {},
      "A built-in matmul_i8 job from the form, or any spec in the CLI's TOML format (see examples/ in the repository) pasted below.",
    ),
    h(
      "fieldset",
      { class: "form" },
      h("legend", {}, "matmul_i8"),
      field("Name", name),
      field("Matrix size n", n),
      field("Seed", seed),
      field("GPU class", gpu),
      field("GPUs", gpuCount),
      field("Max price per hour", perHour),
      field("Max duration", duration),
      field("Bid window", bidWindow),
      field("Provider collateral", collateral),
      field("Token", token),
      field("Instant (first bid wins)", instant),
      fillButton,
    ),
    field("Spec (TOML)", toml),
    h("p", {}, checkButton, " ", submitButton),
    status,
  );
}

function offerWallets(c: Config): void {
  const list = h("ul", { class: "wallets", "aria-label": "Wallets found" });
  put(walletBox, h("span", {}, "No wallet found yet (install one, or unlock it)."));
  discover((w) => {
    const icon = safeIcon(w.info.icon);
    const button = h(
      "button",
      { type: "button" },
      icon ? h("img", { src: icon, alt: "", width: "16", height: "16" }) : null,
      `Connect ${w.info.name}`,
    );
    button.addEventListener("click", async () => {
      try {
        await w.provider.request({ method: "eth_requestAccounts" });
      } catch (e) {
        put(walletBox, notice("error", explain(e)), list);
        return;
      }
      session = { wallet: w };
      w.provider.on?.("chainChanged", () => void refreshWallet(c));
      w.provider.on?.("accountsChanged", () => void refreshWallet(c));
      await refreshWallet(c);
    });
    list.append(h("li", {}, button));
    put(walletBox, list);
  });
}

async function showMarket(c: Config): Promise<void> {
  const seq = ++renders;
  try {
    // The market's logs are read once and shared by the three tables.
    const [created, started] = await Promise.all([orderLogs(client, c), leaseLogs(client, c)]);
    const [orders, provs] = await Promise.all([
      openOrders(client, c, created),
      providers(client, c, started),
    ]);
    const cleared = clearingPrices(created, started);
    putPage(
      seq,
      h("h2", {}, "Market"),
      h("h3", {}, "Orders taking bids"),
      ordersTable(c, orders),
      h("h3", {}, "Clearing prices by GPU class"),
      clearedTable(c, cleared),
      h("h3", {}, "Providers"),
      providersTable(c, provs),
    );
  } catch (e) {
    putPage(
      seq,
      h("h2", {}, "Market"),
      notice("error", `Cannot read the market from ${rpcOrigin(c)}: ${brief(e)}. Is the node running?`),
    );
  }
}

async function start(): Promise<void> {
  let c: Config;
  try {
    c = await loadConfig();
  } catch (e) {
    put(page, notice("error", (e as Error).message));
    return;
  }
  document.body.append(
    h("footer", {}, `Market ${c.deployments.contracts.Market?.address} on ${chainName(c)}, RPC ${rpcOrigin(c)}`),
  );
  config = c;
  // Receipts are polled every second (viem waits 4 s by default): a submit is done when mined.
  client = createPublicClient({ transport: http(c.rpc), pollingInterval: 1_000 });
  offerWallets(c);
  window.addEventListener("hashchange", () => void route());
  // The page's own link, clicked again, reads the chain again (the address does not change).
  for (const a of document.querySelectorAll("nav a")) {
    a.addEventListener("click", () => {
      if (a.getAttribute("href") === location.hash) void route();
    });
  }
  await route();
}

void start();
