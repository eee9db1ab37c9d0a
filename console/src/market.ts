// The Market page: orders taking bids, read from the chain (OrderCreated logs from the market's
// deployment block, each order's state from MarketLens.getJob).

import { type Address, type Hex, type PublicClient, formatUnits, parseUnits } from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { abi as lensAbi } from "../../target/abi/MarketLens.json";
import { abi as stakingAbi } from "../../target/abi/Staking.json";
import { inRanges } from "./logs";
import { type Config, contract } from "./config";
import { h } from "./dom";

/** MarketLens.getJob's `status`: Open, the only one taking bids. */
const OPEN = 1;

export interface OpenOrder {
  id: Hex;
  tenant: Address;
  token: Address;
  specURI: string;
  maxPricePerSecond: bigint;
  deposit: bigint;
  maxDuration: number;
  gpuClass: number;
  gpuCount: number;
  biddingEnd: number;
}

/** One order: its OrderCreated arguments and its state now (MarketLens.getJob). */
/** A log's decoded arguments. */
export type Args = Record<string, unknown>;

const argsOf = (log: unknown): Args => (log as { args: Args }).args;

/** One order: its OrderCreated arguments and its state now (MarketLens.getJob). */
export interface OrderState {
  args: Args;
  job: Args;
}

/**
 * OrderCreated since the market's deployment block, up to block `to` (the head when not given);
 * only `tenant`'s when given.
 */
export async function orderLogs(client: PublicClient, c: Config, tenant?: Address, to?: bigint): Promise<Args[]> {
  const market = contract(c, "Market");
  const logs = await inRanges(
    client,
    BigInt(market.block),
    (fromBlock, toBlock) =>
      client.getContractEvents({
        address: market.address,
        abi: marketAbi,
        eventName: "OrderCreated",
        args: tenant ? { tenant } : undefined,
        fromBlock,
        toBlock,
      }),
    to,
  );
  return logs.map(argsOf);
}

/** LeaseStarted since the market's deployment block. */
export async function leaseLogs(client: PublicClient, c: Config): Promise<Args[]> {
  const market = contract(c, "Market");
  const logs = await inRanges(client, BigInt(market.block), (fromBlock, toBlock) =>
    client.getContractEvents({ address: market.address, abi: marketAbi, eventName: "LeaseStarted", fromBlock, toBlock }),
  );
  return logs.map(argsOf);
}

/** Order or lease `id` as MarketLens.getJob reads it now. */
export async function readJob(client: PublicClient, c: Config, id: Hex): Promise<Args> {
  return (await client.readContract({
    address: contract(c, "MarketLens").address,
    abi: lensAbi,
    functionName: "getJob",
    args: [id],
  })) as Args;
}

/** Each order of `created` (its OrderCreated arguments) with its state now. */
export async function ordersWithState(
  client: PublicClient,
  c: Config,
  created: Args[],
): Promise<OrderState[]> {
  return Promise.all(created.map(async (args) => ({ args, job: await readJob(client, c, args.orderId as Hex) })));
}

/** The orders of `created` still taking bids. */
export async function openOrders(client: PublicClient, c: Config, created: Args[]): Promise<OpenOrder[]> {
  return (await ordersWithState(client, c, created))
    .filter(({ job }) => Number(job.status) === OPEN)
    .map(({ args }) => {
      const p = args.params as Record<string, unknown>;
      return {
        id: args.orderId as Hex,
        tenant: args.tenant as Address,
        token: args.token as Address,
        specURI: String(p.specURI),
        maxPricePerSecond: BigInt(p.maxPricePerSecond as bigint),
        deposit: BigInt(p.deposit as bigint),
        maxDuration: Number(p.maxDuration),
        gpuClass: Number(p.gpuClass),
        gpuCount: Number(p.gpuCount),
        biddingEnd: Number(args.biddingEnd),
      };
    });
}

/** `text` in units of a token with `decimals`: a plain decimal with no more fraction digits than
 * the token has (never rounded), or undefined. */
export function tokenUnits(text: string, decimals: number): bigint | undefined {
  const t = text.trim();
  const m = /^\d+(?:\.(\d+))?$/.exec(t);
  if (!m || (m[1]?.length ?? 0) > decimals) return undefined;
  return parseUnits(t, decimals);
}

/** The deployment's token at `address`, if it lists one. */
export function tokenOf(c: Config, address: Address) {
  return c.deployments.tokens.find((t) => t.address.toLowerCase() === address.toLowerCase());
}

/** An amount in token units, with its symbol (the token's real decimals; 18 if unknown). */
export function amount(c: Config, token: Address, units: bigint): string {
  const t = tokenOf(c, token);
  return `${formatUnits(units, t?.decimals ?? 18)} ${t?.symbol ?? token}`;
}

/**
 * A per-second rate as a price per hour. On chain a rate is token units per second scaled by
 * 10^(18 - decimals) (docs/reference.md; `gridlease_primitives::units::hourly_from_rate`); shown
 * rounded down, as the contract pays.
 */
export function perHour(c: Config, token: Address, rate: bigint): string {
  const decimals = tokenOf(c, token)?.decimals ?? 18;
  const units = (rate * 3600n) / 10n ** BigInt(18 - decimals);
  return `${amount(c, token, units)} / hour`;
}

export function ordersTable(c: Config, orders: OpenOrder[]): HTMLElement {
  if (orders.length === 0) return h("p", {}, "No order is taking bids right now.");
  const rows = orders.map((o) =>
    h(
      "tr",
      {},
      h("td", {}, h("code", { title: o.id }, `${o.id.slice(0, 10)}...`)),
      h("td", {}, `${o.gpuCount} x ${c.gpuClasses[o.gpuClass] ?? `class${o.gpuClass}`}`),
      h("td", {}, perHour(c, o.token, o.maxPricePerSecond)),
      h("td", {}, amount(c, o.token, o.deposit)),
      h("td", {}, `${Math.round(o.maxDuration / 60)} min`),
      h("td", {}, new Date(o.biddingEnd * 1000).toISOString().replace(".000Z", "Z")),
      // A stranger's text: shown as text, never as a link or markup (WEB-03).
      h("td", { class: "uri" }, o.specURI.length > 80 ? `${o.specURI.slice(0, 80)}...` : o.specURI),
    ),
  );
  return h(
    "table",
    { "aria-label": "Orders taking bids" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["order", "GPUs", "max price", "deposit", "max duration", "bids until", "spec URI"].map(
          (t) => h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h("tbody", {}, ...rows),
  );
}

/** A registered provider, as Staking has it now. */
export interface ProviderRow {
  provider: Address;
  operator: Address;
  metadataURI: string;
  gpuClasses: bigint;
  gpuCount: number;
  vramGiB: number;
  stake: bigint;
  locked: bigint;
  live: boolean;
  leases: number;
  faults: number;
}

/** Providers (ProviderRegistered/Updated logs, then Staking.providerInfo and liveness), with the
 * leases they won and the faults proven against them, from the logs. */
export async function providers(client: PublicClient, c: Config, started: Args[]): Promise<ProviderRow[]> {
  const staking = contract(c, "Staking");
  const from = BigInt(staking.block);
  const events = (eventName: "ProviderRegistered" | "ProviderUpdated" | "Slashed") =>
    inRanges(client, from, (fromBlock, toBlock) =>
      client.getContractEvents({ address: staking.address, abi: stakingAbi, eventName, fromBlock, toBlock }),
    ).then((logs) => logs.map(argsOf));
  const [registered, updated, slashed, head] = await Promise.all([
    events("ProviderRegistered"),
    events("ProviderUpdated"),
    events("Slashed"),
    client.getBlock(),
  ]);
  const metadata = new Map<string, string>();
  for (const a of [...registered, ...updated]) {
    metadata.set(String(a.provider).toLowerCase(), String(a.metadataURI));
  }
  const count = (logs: Args[], key: string, p: string) =>
    logs.filter((a) => String(a[key]).toLowerCase() === p).length;
  const rows: ProviderRow[] = [];
  for (const [p, metadataURI] of metadata) {
    const provider = p as Address;
    const [info, live] = (await Promise.all([
      client.readContract({ address: staking.address, abi: stakingAbi, functionName: "providerInfo", args: [provider] }),
      client.readContract({ address: staking.address, abi: stakingAbi, functionName: "liveness", args: [provider] }),
    ])) as [
      { operator: Address; capacity: { gpuClasses: bigint; gpuCount: number; vramGiB: number }; stake: bigint; locked: bigint },
      { at: number; period: number },
    ];
    rows.push({
      provider,
      operator: info.operator,
      metadataURI,
      gpuClasses: BigInt(info.capacity.gpuClasses),
      gpuCount: Number(info.capacity.gpuCount),
      vramGiB: Number(info.capacity.vramGiB),
      stake: BigInt(info.stake),
      locked: BigInt(info.locked),
      // Live: a heartbeat within its period (service orders go only to live providers).
      live: Number(live.at) > 0 && Number(live.at) + Number(live.period) >= Number(head.timestamp),
      leases: count(started, "provider", p),
      faults: count(slashed, "provider", p),
    });
  }
  return rows;
}

/** The class names set in a GPU class bitmask. */
export function classNames(c: Config, mask: bigint): string {
  const names = c.gpuClasses.filter((_, i) => (mask >> BigInt(i)) & 1n);
  return names.length ? names.join(", ") : "none";
}

export function providersTable(c: Config, rows: ProviderRow[]): HTMLElement {
  if (rows.length === 0) return h("p", {}, "No provider has registered yet.");
  // The stake token is the deployment's first token.
  const stakeToken = c.deployments.tokens[0]?.address;
  const stake = (v: bigint) => (stakeToken ? amount(c, stakeToken, v) : v.toString());
  return h(
    "table",
    { "aria-label": "Providers" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["provider", "GPUs", "stake", "locked", "live", "leases won", "faults", "metadata URI"].map(
          (t) => h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      ...rows.map((r) =>
        h(
          "tr",
          {},
          h("td", {}, h("code", { title: r.provider }, `${r.provider.slice(0, 10)}...`)),
          h("td", {}, `${r.gpuCount} x ${classNames(c, r.gpuClasses)}, ${r.vramGiB} GiB`),
          h("td", {}, stake(r.stake)),
          h("td", {}, stake(r.locked)),
          h("td", {}, r.live ? "yes" : "no"),
          h("td", {}, String(r.leases)),
          h("td", {}, String(r.faults)),
          h("td", { class: "uri" }, r.metadataURI),
        ),
      ),
    ),
  );
}

/** Prices leases cleared at, per GPU class of their order. */
export interface Cleared {
  gpuClass: number;
  leases: number;
  last: bigint;
  lowest: bigint;
  token: Address;
}

/** From LeaseStarted logs (the rate a lease pays) and each order's GPU class (OrderCreated). */
export function clearingPrices(created: Args[], started: Args[]): Cleared[] {
  const orders = new Map<string, { gpuClass: number; token: Address }>();
  for (const a of created) {
    const p = a.params as Record<string, unknown>;
    orders.set(String(a.orderId), { gpuClass: Number(p.gpuClass), token: a.token as Address });
  }
  const byClass = new Map<number, Cleared>();
  for (const a of started) {
    const o = orders.get(String(a.orderId));
    if (!o) continue;
    const rate = BigInt(a.ratePerSecond as bigint);
    const prev = byClass.get(o.gpuClass);
    byClass.set(o.gpuClass, {
      gpuClass: o.gpuClass,
      token: o.token,
      leases: (prev?.leases ?? 0) + 1,
      last: rate,
      lowest: prev && prev.lowest < rate ? prev.lowest : rate,
    });
  }
  return [...byClass.values()].sort((a, b) => a.gpuClass - b.gpuClass);
}

export function clearedTable(c: Config, rows: Cleared[]): HTMLElement {
  if (rows.length === 0) return h("p", {}, "No lease has started yet.");
  return h(
    "table",
    { "aria-label": "Clearing prices by GPU class" },
    h(
      "thead",
      {},
      h("tr", {}, ...["GPU class", "leases", "last price", "lowest price"].map((t) => h("th", { scope: "col" }, t))),
    ),
    h(
      "tbody",
      {},
      ...rows.map((r) =>
        h(
          "tr",
          {},
          h("td", {}, c.gpuClasses[r.gpuClass] ?? `class${r.gpuClass}`),
          h("td", {}, String(r.leases)),
          h("td", {}, perHour(c, r.token, r.last)),
          h("td", {}, perHour(c, r.token, r.lowest)),
        ),
      ),
    ),
  );
}
