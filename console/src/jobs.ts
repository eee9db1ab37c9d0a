// My jobs: the connected account's orders and leases, read from the chain (OrderCreated logs with
// the account as tenant, each one's state from MarketLens.getJob), and what the tenant can do with
// an open order: cancel it, through the wallet, after a simulation shows it would go through.

import {
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  BaseError,
  ContractFunctionRevertedError,
  createWalletClient,
  custom,
  defineChain,
  parseEventLogs,
} from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { abi as adminAbi } from "../../target/abi/MarketAdmin.json";
import { type Config, contract } from "./config";
import { h } from "./dom";
import { amount, orderLogs, ordersWithState, perHour } from "./market";
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
}

export async function myJobs(client: PublicClient, c: Config, tenant: Address): Promise<MyJob[]> {
  const orders = await ordersWithState(client, c, await orderLogs(client, c, tenant));
  return orders
    .map(({ args, job }) => ({
      id: args.orderId as Hex,
      token: args.token as Address,
      status: Number(job.status),
      escrow: BigInt(job.escrow as bigint),
      provider: job.provider as Address,
      ratePerSecond: BigInt(job.ratePerSecond as bigint),
      end: Number(job.end),
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
  if (err instanceof BaseError) {
    const r = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (r instanceof ContractFunctionRevertedError) {
      return `The market refuses it (${r.data?.errorName ?? r.reason ?? "reverted"}); nothing was sent.`;
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
  const { request } = await client.simulateContract({
    address: market,
    abi: adminAbi,
    functionName: "cancelOrder",
    args: [job.id],
    account,
  });
  const walletClient = createWalletClient({ account, chain: chainOf(c), transport: custom(wallet) });
  const hash = await walletClient.writeContract(request);
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`the transaction ${hash} reverted on chain`);
  const [ev] = parseEventLogs({ abi: marketAbi, logs: receipt.logs, eventName: "OrderCancelled" });
  return BigInt((ev as unknown as { args: { refund: bigint } }).args.refund);
}

export function jobsTable(
  c: Config,
  jobs: MyJob[],
  onCancel: (j: MyJob, button: HTMLButtonElement) => void,
): HTMLElement {
  if (jobs.length === 0) return h("p", {}, "This account has no order on this market.");
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
        let action: HTMLElement | null = null;
        if (j.status === 1) {
          // WEB-01: the refund shown is the escrow the chain holds for the order.
          const b = h(
            "button",
            { type: "button" },
            `Cancel ${j.id.slice(0, 10)} (refunds ${amount(c, j.token, j.escrow)})`,
          ) as HTMLButtonElement;
          b.addEventListener("click", () => onCancel(j, b));
          action = b;
        }
        const leased = j.provider !== "0x0000000000000000000000000000000000000000";
        return h(
          "tr",
          {},
          h("td", {}, h("code", { title: j.id }, `${j.id.slice(0, 10)}...`)),
          h("td", {}, STATUS[j.status] ?? `status ${j.status}`),
          h("td", {}, amount(c, j.token, j.escrow)),
          h("td", {}, leased ? h("code", { title: j.provider }, `${j.provider.slice(0, 10)}...`) : "-"),
          h("td", {}, leased ? perHour(c, j.token, j.ratePerSecond) : "-"),
          h("td", {}, j.end ? new Date(j.end * 1000).toISOString().replace(".000Z", "Z") : "-"),
          h("td", {}, action),
        );
      }),
    ),
  );
}

