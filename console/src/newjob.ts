// New job: a spec (the CLI's TOML format, typed or filled from the form) checked by the CLI's own
// code (`gridlease console` answers POST /api/order with the order `gridlease submit --check`
// would make, or its error word for word), then one EIP-2612 permit signature and one
// transaction (Market.createOrderWithPermit) through the user's wallet; a token without a permit
// (USDT and its like) is approved to the market first, then Market.createOrder.

import { type Address, type Hex, type PublicClient, formatUnits, toHex } from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { type Config, type Token, contract } from "./config";
import { marketEvent } from "./jobs";
import { type PermitShown, pay, permitDomain } from "./permit";
import type { Eip1193 } from "./wallet";

/** The order `/api/order` built from a spec: amounts in token units, as decimal strings. */
export interface CheckedOrder {
  order: {
    specHash: Hex;
    specURI: string;
    token: Address;
    deposit: string;
    maxPricePerSecond: string;
    maxDuration: number;
    bidWindow: number;
    collateral: string;
    gpuClass: number;
    gpuCount: number;
    vramGiB: number;
    cpuCores: number;
    ramGiB: number;
    jobKind: number;
    instant: boolean;
  };
  token: Token;
  human: string;
  /** The order's salt, drawn at its first Submit and kept: a second Submit of the same checked
   * order (after one whose outcome could not be read) is refused as the same order if the first
   * went through, instead of placing a second escrow. */
  salt?: Hex;
}

/** Ask the console's server to check `toml` as `gridlease submit --check` would. */
export async function checkSpec(toml: string): Promise<CheckedOrder> {
  const res = await fetch("./api/order", {
    method: "POST",
    headers: { "Content-Type": "application/toml" },
    body: toml,
  });
  const body = (await res.json().catch(() => ({}))) as { error?: string } & Partial<CheckedOrder>;
  if (!res.ok) throw new Error(body.error ?? `the console's server answered HTTP ${res.status}`);
  return body as CheckedOrder;
}

/** The form's fields, turned into the spec format (the TOML the CLI reads). */
export interface FormFields {
  name: string;
  n: number;
  seed: number;
  gpu: string;
  gpuCount: number;
  maxPerHour: string;
  maxDuration: string;
  bidWindow: string;
  collateral: string;
  token: string;
  instant: boolean;
}

/** A TOML string literal: every character that could end or escape it is escaped. */
function lit(s: string): string {
  return JSON.stringify(s);
}

export function specToml(f: FormFields): string {
  return [
    `name = ${lit(f.name)}`,
    `kind = "matmul_i8"`,
    "",
    "[resources]",
    `gpu = ${lit(f.gpu)}`,
    `gpu_count = ${Math.trunc(f.gpuCount)}`,
    "vram_gib = 1",
    "cpu_cores = 1",
    "ram_gib = 1",
    "",
    "[price]",
    `max_per_hour = ${lit(f.maxPerHour)}`,
    `max_duration = ${lit(f.maxDuration)}`,
    `bid_window = ${lit(f.bidWindow)}`,
    `collateral = ${lit(f.collateral)}`,
    `instant = ${f.instant ? "true" : "false"}`,
    `token = ${lit(f.token)}`,
    "",
    "[matmul]",
    `n = ${Math.trunc(f.n)}`,
    `seed = ${Math.trunc(f.seed)}`,
    "",
  ].join("\n");
}

export interface Submitted {
  orderId: Hex;
  tx: Hex;
  block: bigint;
}

/**
 * How `token` pays an order's escrow: "permit" (one signature, in the order's own transaction) or
 * "approve" (an approval to the market first). Asked when a spec is checked, to say it before
 * anything is signed.
 */
export async function payment(client: PublicClient, c: Config, token: Token): Promise<"permit" | "approve"> {
  return typeof (await permitDomain(client, c, token)) === "string" ? "approve" : "permit";
}

/**
 * Submit `checked` from `account`: check the balances, then pay the deposit to the market with one
 * permit signature for exactly it (`show` is called with what is about to be signed; the signed
 * value is that one) or, for a token without a permit, an approval of exactly it, simulate, send
 * one transaction and wait for it.
 */
export async function submitOrder(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  checked: CheckedOrder,
  show: (p: PermitShown, step: string) => void,
): Promise<Submitted> {
  const market = contract(c, "Market").address;
  const token = checked.token;
  if (checked.order.token.toLowerCase() !== token.address.toLowerCase()) {
    throw new Error("the checked order names another token than it reports: check the spec again");
  }
  const deposit = BigInt(checked.order.deposit);
  const key = saltKey(c, account, checked);
  checked.salt ??= keptSalt(key);
  const salt = checked.salt;
  const params = {
    ...checked.order,
    deposit,
    maxPricePerSecond: BigInt(checked.order.maxPricePerSecond),
    collateral: BigInt(checked.order.collateral),
    salt,
  };
  // WEB-01: the permit or the approval is for exactly the order's deposit, to the market.
  const receipt = await pay(
    client,
    c,
    wallet,
    account,
    token,
    { address: market, name: "the market" },
    deposit,
    {
      approved: { address: market, abi: marketAbi, functionName: "createOrder", args: [params] },
      permitted: ({ deadline, v, r, s }) => ({
        address: market,
        abi: marketAbi,
        functionName: "createOrderWithPermit",
        args: [params, deadline, v, r, s],
      }),
    },
    // The same words as `gridlease submit`.
    (held) =>
      `wallet ${account} holds ${held}, the order needs ${formatUnits(deposit, token.decimals)} ${token.symbol} of escrow; fund it or lower price.deposit`,
    show,
  );
  const { orderId } = marketEvent<{ orderId: Hex }>(receipt, "OrderCreated");
  // Placed: the same spec submitted again on purpose is a new order.
  forgetSalt(key);
  return { orderId, tx: receipt.transactionHash, block: receipt.blockNumber };
}

/** Where this tab keeps the salt of `account`'s checked order on `c`'s market. */
function saltKey(c: Config, account: Address, checked: CheckedOrder): string {
  return `gridlease.salt:${c.chainId}:${contract(c, "Market").address}:${account}:${JSON.stringify(checked.order)}`;
}

/**
 * The salt kept for the order under `key` (this tab's session), drawn and kept if there is none.
 * A reload or a new check of the same order reuses it until the order is seen placed: submitting
 * it again after an outcome the page could not read (the wallet timed out, the tab was reloaded)
 * is refused by the market as the same order instead of placing a second escrow.
 */
function keptSalt(key: string): Hex {
  try {
    const kept = sessionStorage.getItem(key);
    if (kept && /^0x[0-9a-f]{64}$/.test(kept)) return kept as Hex;
  } catch {
    // Storage refused (a private window): the salt lives as long as the check.
  }
  const salt = toHex(crypto.getRandomValues(new Uint8Array(32)));
  try {
    sessionStorage.setItem(key, salt);
  } catch {
    // As above.
  }
  return salt;
}

function forgetSalt(key: string): void {
  try {
    sessionStorage.removeItem(key);
  } catch {
    // As above.
  }
}
