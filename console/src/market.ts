// The Market page: orders taking bids, read from the chain (OrderCreated logs from the market's
// deployment block, each order's state from MarketLens.getJob).

import { type Address, type Hex, type PublicClient, formatUnits } from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { abi as lensAbi } from "../../target/abi/MarketLens.json";
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

export async function openOrders(client: PublicClient, c: Config): Promise<OpenOrder[]> {
  const market = contract(c, "Market");
  const lens = contract(c, "MarketLens");
  const logs = await client.getContractEvents({
    address: market.address,
    abi: marketAbi,
    eventName: "OrderCreated",
    fromBlock: BigInt(market.block),
    toBlock: "latest",
  });
  const orders: OpenOrder[] = [];
  for (const log of logs) {
    const args = (log as unknown as { args: Record<string, unknown> }).args;
    const id = args.orderId as Hex;
    const p = args.params as Record<string, unknown>;
    const job = (await client.readContract({
      address: lens.address,
      abi: lensAbi,
      functionName: "getJob",
      args: [id],
    })) as { status: number };
    if (Number(job.status) !== OPEN) continue;
    orders.push({
      id,
      tenant: args.tenant as Address,
      token: args.token as Address,
      specURI: String(p.specURI),
      maxPricePerSecond: BigInt(p.maxPricePerSecond as bigint),
      deposit: BigInt(p.deposit as bigint),
      maxDuration: Number(p.maxDuration),
      gpuClass: Number(p.gpuClass),
      gpuCount: Number(p.gpuCount),
      biddingEnd: Number(args.biddingEnd),
    });
  }
  return orders;
}

function tokenOf(c: Config, address: Address) {
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
