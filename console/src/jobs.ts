// My jobs: the connected account's orders and leases, read from the chain (OrderCreated logs with
// the account as tenant, each one's state from MarketLens.getJob), and what the tenant can do with
// an open order: cancel it, through the wallet, after a simulation shows it would go through.

import {
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  BaseError,
  ContractFunctionRevertedError,
  createWalletClient,
  custom,
  defineChain,
  parseAbi,
  parseEventLogs,
} from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { abi as adminAbi } from "../../target/abi/MarketAdmin.json";
import { type Config, contract } from "./config";
import { h } from "./dom";
import { amount, orderLogs, ordersWithState, perHour, readJob, tokenOf } from "./market";
import { type Eip1193, explain } from "./wallet";

/** MarketLens.getJob's `status` codes (docs/reference.md §3). */
const STATUS = ["unknown", "open", "leased", "closed", "cancelled", "faulted"];

export interface MyJob {
  id: Hex;
  token: Address;
  status: number;
  escrow: bigint;
  provider: Address;
  ratePerSecond: bigint;
  end: number;
  /** The lease's kind: 0 batch (running), 1 service, 2 held (its result posted, pay held). */
  kind: number;
  /** Settled up to (a service lease's escrow pays from here on). */
  settledAt: number;
  /** The market flagged the service lease's escrow as running low (LowBalance). */
  lowBalance: boolean;
  /** A chunk of the posted result is challenged, its answer not yet on chain. */
  challenged: boolean;
  /** The results module the lease is bound to (its results and challenges are logged there). */
  module: Address;
}

/** MarketLens.getJob's lease kinds (docs/reference.md §3). */
export const KIND_SERVICE = 1;
export const KIND_HELD = 2;

/**
 * When a running service lease's escrow runs out at its rate (unix seconds), or undefined for
 * any other job: the escrow pays from `settledAt` on, one `ratePerSecond` (18-decimal scaled
 * per second, docs/reference.md) at a time.
 */
export function fundedUntil(j: MyJob, decimals: number): number | undefined {
  if (j.status !== 2 || j.kind !== KIND_SERVICE || j.ratePerSecond === 0n) return undefined;
  const scaled = j.escrow * 10n ** BigInt(18 - decimals);
  return j.settledAt + Number(scaled / j.ratePerSecond);
}

/** `tenant`'s orders created up to block `to` (the head when not given), as they stand now. */
export async function myJobs(client: PublicClient, c: Config, tenant: Address, to?: bigint): Promise<MyJob[]> {
  const orders = await ordersWithState(client, c, await orderLogs(client, c, tenant, to));
  return orders
    .map(({ args, job }) => ({
      id: args.orderId as Hex,
      token: args.token as Address,
      status: Number(job.status),
      escrow: BigInt(job.escrow as bigint),
      provider: job.provider as Address,
      ratePerSecond: BigInt(job.ratePerSecond as bigint),
      end: Number(job.end),
      kind: Number(job.kind),
      settledAt: Number(job.settledAt),
      lowBalance: Boolean(job.lowBalance),
      challenged: Boolean(job.challenged),
      module: job.module as Address,
    }))
    .reverse();
}

export function chainOf(c: Config): Chain {
  return defineChain({
    id: c.chainId,
    name: `chain ${c.chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [c.rpc] } },
  });
}

/** Why a simulation or transaction failed, in words: the contract's error by name, or the wallet's. */
export function reverted(err: unknown): string {
  // The page's own refusal (a check before anything is signed): its words as they are.
  if (err instanceof Error && !(err instanceof BaseError) && (err as { code?: unknown }).code === undefined) {
    return err.message;
  }
  if (err instanceof BaseError) {
    const r = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (r instanceof ContractFunctionRevertedError) {
      // A revert string (`Error(string)`: a token's `require`) is not the market's own error.
      if (r.data?.errorName === "Error" || (r.data === undefined && r.reason)) {
        return `The transaction would revert (${r.reason ?? "no reason given"}); nothing was sent.`;
      }
      return `The market refuses it (${r.data?.errorName ?? "reverted"}); nothing was sent.`;
    }
  }
  return explain(err);
}

/**
 * Cancel open order `job`: simulate (a refusal costs nothing and is explained), then send through
 * the wallet and wait for it. Returns the refund the market's OrderCancelled event reports.
 */
export async function cancel(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  job: MyJob,
): Promise<bigint> {
  const market = contract(c, "Market").address;
  const receipt = await simulateAndSend(client, c, wallet, account, {
    address: market,
    abi: adminAbi,
    functionName: "cancelOrder",
    args: [job.id],
  });
  return BigInt(marketEvent<{ refund: bigint }>(receipt, "OrderCancelled").refund);
}

const erc20Abi = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function allowance(address,address) view returns (uint256)",
]);
// `approve` as USDT declares it, returning nothing: a token that returns a bool is read the same.
const approveAbi = parseAbi(["function approve(address,uint256)"]);

/** A contract call, as simulateContract and writeContract take it. */
export interface Call {
  address: Address;
  abi: readonly unknown[];
  functionName: string;
  args: readonly unknown[];
}

/** Simulate `call` from `account` (a revert is explained and nothing is sent), then send it
 * through the wallet and wait for it to be mined. Once the wallet has sent it, a failure to read
 * its outcome (the RPC dropping, a slow chain) says so, with its hash: it may still go through,
 * and doing it again could pay twice. */
export async function simulateAndSend(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  call: Call,
) {
  // The simulation's request (viem's types for it depend on each ABI) is what the wallet sends,
  // with a gas limit that has room above the estimate, as the CLI's (chain::send): time passes
  // between the estimate and the block (a lease that owed nothing owes a little, and paying it
  // writes more), and unused gas is not paid for.
  const { request } = await client.simulateContract({ ...call, account } as never);
  const estimate = await client.estimateContractGas({ ...call, account } as never);
  const gas = estimate + estimate / 2n + 50_000n;
  const walletClient = createWalletClient({ account, chain: chainOf(c), transport: custom(wallet) });
  const hash = await walletClient.writeContract({ ...(request as object), gas } as never);
  let receipt: TransactionReceipt;
  try {
    receipt = await client.waitForTransactionReceipt({ hash });
  } catch (e) {
    throw new Error(
      `Sent as transaction ${hash}, but its outcome could not be read (${explain(e)}). It may still go through: look it up (or reload the page) before doing it again.`,
    );
  }
  if (receipt.status !== "success") throw new Error(`the transaction ${hash} reverted on chain`);
  return receipt;
}

/**
 * The arguments of the market's first `eventName` event in `receipt`. A receipt without one (the
 * transaction was replaced in the wallet by another at its nonce) is an error that says to look
 * before trying again.
 */
export function marketEvent<A>(receipt: TransactionReceipt, eventName: string): A {
  const [ev] = parseEventLogs({ abi: marketAbi, logs: receipt.logs, eventName } as never) as unknown as { args: A }[];
  if (!ev) {
    throw new Error(
      `transaction ${receipt.transactionHash} was mined without the market's ${eventName} event (replaced in the wallet?): look at the job's state before trying again`,
    );
  }
  return ev.args;
}

/**
 * Make `spender`'s allowance from `account` in `token` at least `units`, for `call` (of the market,
 * or Staking) that pulls them, as `gridlease topup` and `submit` do (cli/src/manage.rs,
 * approve_market). The call is simulated first, and only when the allowance is short: one the
 * contract refuses for its own reasons (a lapsed lease, an order that exists) is refused in its
 * words, with no approval asked or left behind. The approval is of exactly `units`; a short
 * non-zero allowance is set to zero first (USDT and its like refuse to change one non-zero
 * allowance into another). `step` says what the wallet is about to ask; returns how many
 * approvals it asked for.
 */
export async function approveFor(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  token: Address,
  spender: { address: Address; name: string },
  units: bigint,
  call: Call,
  step: (what: string) => void,
): Promise<number> {
  const allowance = await client.readContract({
    address: token,
    abi: erc20Abi,
    functionName: "allowance",
    args: [account, spender.address],
  });
  if (allowance >= units) return 0;
  const abi = [...call.abi, ...marketErrors] as readonly { type: string; name?: string }[];
  try {
    await client.simulateContract({ ...call, abi, account } as never);
  } catch (e) {
    // A revert in the token's words (its transferFrom refusing the short allowance) is what the
    // approval answers; one in the contract's own words, or no answer at all, is the caller's.
    const r = e instanceof BaseError ? e.walk((x) => x instanceof ContractFunctionRevertedError) : undefined;
    if (!(r instanceof ContractFunctionRevertedError)) throw e;
    const name = r.data?.errorName;
    const own = abi.some((x) => x.type === "error" && x.name === name);
    if (name !== undefined && name !== "InsufficientAllowance" && own) throw e;
  }
  const approve = (value: bigint) =>
    simulateAndSend(client, c, wallet, account, {
      address: token,
      abi: approveAbi,
      functionName: "approve",
      args: [spender.address, value],
    });
  // The call comes last: one more transaction than the approvals.
  const total = allowance > 0n ? 3 : 2;
  if (allowance > 0n) {
    step(`Set ${spender.name}'s allowance of ${amount(c, token, allowance)} to 0 in your wallet first (1 of 3)...`);
    await approve(0n);
  }
  step(`Approve ${amount(c, token, units)} to ${spender.name} ${spender.address} in your wallet (${total - 1} of ${total})...`);
  try {
    await approve(units);
  } catch (e) {
    if (allowance === 0n) throw e;
    // The usual words ("nothing was signed or sent") are true of this step only: the allowance
    // was set to 0 on chain before it.
    const why = reverted(e).replace(/;? nothing was (signed or )?sent\.$/, ".");
    throw new Error(
      `The approval failed: ${why} The step before it went through: ${spender.name}'s allowance is now 0 (it was ${amount(c, token, allowance)}); nothing else changed.`,
    );
  }
  return total - 1;
}

/**
 * Run `last`, the call that `approvals` approvals (of `what`) just made possible. When it fails
 * after one went through, the error says so: the page's usual words ("nothing was sent") would
 * not be true.
 */
export async function afterApproval<T>(approvals: number, what: string, last: () => Promise<T>): Promise<T> {
  try {
    return await last();
  } catch (e) {
    if (approvals === 0) throw e;
    // The usual words end "nothing was (signed or) sent", which is true of this step only.
    const why = reverted(e).replace(/;? nothing was (signed or )?sent\.$/, ".");
    throw new Error(
      `The last step failed: ${why} The approval of ${what} before it went through and stays (the next try uses it; your wallet can set it back to 0).`,
    );
  }
}

// The market's errors, whichever of its ABIs (Market, MarketAdmin at its address) a call uses.
const marketErrors = [...marketAbi, ...adminAbi].filter((x) => x.type === "error");

/**
 * Add `units` of the job's token to open order or running lease `job` (`MarketAdmin.topUp`, at
 * the market's address, naming the lease's provider so it never lands on a lease that changed
 * hands): an approval first when the market's allowance is short (see [approveFor]).
 * Returns the escrow the market's ToppedUp event reports.
 */
export async function topUp(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  job: MyJob,
  units: bigint,
  step: (what: string) => void,
): Promise<bigint> {
  const market = contract(c, "Market").address;
  const balance = await client.readContract({
    address: job.token,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [account],
  });
  if (balance < units) {
    throw new Error(
      `wallet ${account} holds ${amount(c, job.token, balance)}, the top-up is ${amount(c, job.token, units)}`,
    );
  }
  const expected = job.status === 2 ? job.provider : "0x0000000000000000000000000000000000000000";
  const call = { address: market, abi: adminAbi, functionName: "topUp", args: [job.id, units, expected] };
  // (MarketAdmin's calls run at the market's address: the allowance is the market's.)
  const spender = { address: market, name: "the market" };
  const approvals = await approveFor(client, c, wallet, account, job.token, spender, units, call, step);
  step(`Confirm the top-up of ${amount(c, job.token, units)} in your wallet...`);
  const receipt = await afterApproval(approvals, amount(c, job.token, units), () =>
    simulateAndSend(client, c, wallet, account, call),
  );
  return BigInt(marketEvent<{ escrow: bigint }>(receipt, "ToppedUp").escrow);
}

/** What a close paid and refunded (the market's LeaseClosed event). */
export interface Closed {
  paid: bigint;
  refund: bigint;
  held: boolean;
}

/**
 * Close lease `job` as its tenant: a held result is accepted (its held pay goes to the
 * provider), a service lease ends (its live time paid, the rest refunded). Simulated first.
 */
export async function closeLease(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  job: MyJob,
): Promise<Closed> {
  // What the page showed may be stale (a challenge, a result or a close since it was drawn, the
  // refresh paused while another action waited): read the lease again, and close only the lease
  // the button was for. The contract lets a tenant accept a challenged result, so the simulation
  // alone would not stop it.
  const now = await readJob(client, c, job.id);
  if (Number(now.status) !== job.status || Number(now.kind) !== job.kind) {
    throw new Error("the lease changed since this page was drawn (a result, a close or a fault): look at it again before closing");
  }
  if (Number(now.kind) === KIND_HELD && Boolean(now.challenged)) {
    throw new Error(
      "a chunk of this result was challenged since this page was drawn: wait for the provider's answer, or prove it unavailable once the response window has passed (gridlease result ID --prove)",
    );
  }
  const receipt = await simulateAndSend(client, c, wallet, account, {
    address: contract(c, "Market").address,
    abi: marketAbi,
    functionName: "close",
    args: [job.id],
  });
  const a = marketEvent<Closed>(receipt, "LeaseClosed");
  return { paid: BigInt(a.paid), refund: BigInt(a.refund), held: Boolean(a.held) };
}

/** What the table's buttons do (the page wires them to the wallet). */
export interface JobActions {
  cancel(j: MyJob, button: HTMLButtonElement): void;
  topUp(j: MyJob, input: HTMLInputElement, button: HTMLButtonElement): void;
  close(j: MyJob, button: HTMLButtonElement): void;
}

/** A duration in words, minutes or hours. */
function inWords(secs: number): string {
  if (secs <= 0) return "now";
  if (secs < 3600) return `${Math.ceil(secs / 60)} min`;
  return `${(secs / 3600).toFixed(1)} h`;
}

/** How long before a service lease runs dry counts as low: the market's flag, or under 10 min. */
const LOW_SECS = 600;

/** Warnings for the service leases whose escrow is running out (`now`: the chain's time). */
export function lowBalanceWarnings(c: Config, jobs: MyJob[], now: number): HTMLElement[] {
  return jobs.flatMap((j) => {
    const decimals = tokenOf(c, j.token)?.decimals ?? 18;
    const until = fundedUntil(j, decimals);
    if (until === undefined || (!j.lowBalance && until - now > LOW_SECS)) return [];
    return [
      h(
        "p",
        { class: "notice error", role: "alert" },
        `Lease ${j.id.slice(0, 10)} runs out of escrow in ${inWords(until - now)} (${amount(c, j.token, j.escrow)} left): top it up, or it is closed as exhausted.`,
      ),
    ];
  });
}

export function jobsTable(c: Config, jobs: MyJob[], on: JobActions): HTMLElement {
  if (jobs.length === 0) return h("p", {}, "This account has no order on this market.");
  const topUpControls = (j: MyJob) => {
    const input = h("input", {
      type: "text",
      inputmode: "decimal",
      size: "6",
      "aria-label": `Top-up amount for ${j.id.slice(0, 10)}`,
      placeholder: "amount",
    }) as HTMLInputElement;
    const b = h("button", { type: "button" }, `Top up ${j.id.slice(0, 10)}`) as HTMLButtonElement;
    b.addEventListener("click", () => on.topUp(j, input, b));
    return [input, b];
  };
  return h(
    "table",
    { "aria-label": "Your orders" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["order", "state", "escrow", "provider", "price", "ends", ""].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      ...jobs.map((j) => {
        const actions: HTMLElement[] = [];
        if (j.status === 1) {
          // WEB-01: the refund shown is the escrow the chain holds for the order.
          const b = h(
            "button",
            { type: "button" },
            `Cancel ${j.id.slice(0, 10)} (refunds ${amount(c, j.token, j.escrow)})`,
          ) as HTMLButtonElement;
          b.addEventListener("click", () => on.cancel(j, b));
          actions.push(b, ...topUpControls(j));
        }
        if (j.status === 2 && j.kind === KIND_HELD && j.challenged) {
          // Accepting now pays even if the chunk is never revealed; unrevealed, proving it
          // refunds everything instead (the CLI refuses that close too, unless forced).
          actions.push(
            h(
              "span",
              { class: "challenged" },
              `A chunk of ${j.id.slice(0, 10)}'s result is challenged: no accepting until it is revealed (unrevealed by its deadline, prove it: gridlease result ${j.id} --prove).`,
            ),
          );
        } else if (j.status === 2 && j.kind === KIND_HELD) {
          const b = h("button", { type: "button" }, `Accept result of ${j.id.slice(0, 10)}`) as HTMLButtonElement;
          b.addEventListener("click", () => on.close(j, b));
          actions.push(b);
        }
        if (j.status === 2 && j.kind === KIND_SERVICE) {
          const b = h("button", { type: "button" }, `End ${j.id.slice(0, 10)}`) as HTMLButtonElement;
          b.addEventListener("click", () => on.close(j, b));
          actions.push(b, ...topUpControls(j));
        }
        const leased = j.provider !== "0x0000000000000000000000000000000000000000";
        const state =
          j.status === 2 && j.kind === KIND_HELD
            ? "result posted"
            : j.status === 2 && j.kind === KIND_SERVICE
              ? "service running"
              : (STATUS[j.status] ?? `status ${j.status}`);
        return h(
          "tr",
          {},
          // The id is a bytes32 the chain logged (hex only): safe in a link's address.
          h("td", {}, h("a", { href: `#job/${j.id}`, title: j.id }, h("code", {}, `${j.id.slice(0, 10)}...`))),
          h("td", {}, state),
          h("td", {}, amount(c, j.token, j.escrow)),
          h("td", {}, leased ? h("code", { title: j.provider }, `${j.provider.slice(0, 10)}...`) : "-"),
          h("td", {}, leased ? perHour(c, j.token, j.ratePerSecond) : "-"),
          h("td", {}, j.end ? new Date(j.end * 1000).toISOString().replace(".000Z", "Z") : "-"),
          h("td", { class: "actions" }, ...actions),
        );
      }),
    ),
  );
}
