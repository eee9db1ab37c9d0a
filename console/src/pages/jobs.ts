// My jobs: the account's orders and leases, kept live, and what the tenant can do with them
// (see ../jobs.ts).

import { type Address, type Hex, encodeEventTopics, toHex } from "viem";
import { abi as marketAbi } from "../../../target/abi/Market.json";
import { app, beginRender, brief, chainName, current, finished, page, putPage } from "../app";
import { type Config, contract, learnTokens, rpcOrigin } from "../config";
import { h, notice, put } from "../dom";
import { cancel, closeLease, jobsTable, lowBalanceWarnings, myJobs, reverted, topUp } from "../jobs";
import { modulesOf } from "../job";
import { inRanges } from "../logs";
import { amount, tokenOf, tokenUnits } from "../market";

/** Set while a My jobs action waits on the wallet or the chain: the live refresh holds off. */
let jobsBusy = false;
/** Stops the live refresh of My jobs (another page, or a newer render). */
let stopWatch: (() => void) | undefined;

/** Stop the live refresh of My jobs (the user went to another page). */
export function stopWatching(): void {
  stopWatch?.();
}

/**
 * Every 2 s, when a block came: `refresh` if the market or a results module of the jobs
 * (`modules`) logged anything about `ids`, or a new order of `account`, since block `from`. Reads
 * only logs, not each job.
 */
function watchJobs(
  c: Config,
  account: Address,
  ids: Hex[],
  modules: Address[],
  from: bigint,
  refresh: () => void,
): void {
  stopWatch?.();
  let last = from;
  let stopped = false;
  const market = contract(c, "Market").address;
  // The market, and every results module the leases are bound to (their results and challenges).
  const sources = modulesOf(c, modules);
  const mine = encodeEventTopics({ abi: marketAbi, eventName: "OrderCreated", args: { tenant: account } });
  const timer = setInterval(async () => {
    if (stopped || jobsBusy || location.hash !== "#jobs") return;
    try {
      const head = await app.client.getBlockNumber({ cacheTime: 0 });
      if (head <= last) return;
      // (A tab left asleep for long asks a long range: in pieces if the RPC refuses it.)
      const logs = (filter: object) =>
        inRanges(
          app.client,
          last + 1n,
          (a, b) =>
            app.client.request({
              method: "eth_getLogs",
              params: [{ ...filter, fromBlock: toHex(a), toBlock: toHex(b) }],
            } as never) as Promise<unknown[]>,
          head,
        );
      // At most 100 ids per filter: RPCs cap a topic's alternatives, and a refused filter would
      // stop the refresh for good.
      const chunks: Hex[][] = [];
      for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100));
      const [touching, created] = await Promise.all([
        Promise.all(chunks.map((part) => logs({ address: sources, topics: [null, part] }))).then((l) => l.flat()),
        logs({ address: market, topics: mine }),
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
export async function showJobs(c: Config, message?: HTMLElement): Promise<void> {
  const seq = beginRender();
  const heading = h("h2", {}, "My jobs");
  if (!app.session?.account || app.session.chainId !== c.chainId) {
    putPage(seq, heading, notice("info", `Connect a wallet on ${chainName(c)} to see your orders and leases.`));
    return;
  }
  const account = app.session.account as Address;
  const wallet = app.session.wallet.provider;
  const status = h("div", { "aria-live": "polite", id: "jobs-status" }, message);
  // Runs `action`; on failure nothing changed on chain (WEB-04): the page says why, and the
  // button works again. The live refresh waits while it runs.
  const attempt = (button: HTMLButtonElement, pending: string, action: () => Promise<HTMLElement>) => {
    button.disabled = true;
    jobsBusy = true;
    put(status, notice("info", pending));
    action()
      .then(async (done) => {
        // Busy until the outcome is on the page: a refresh started meanwhile (the chain logged
        // this very transaction) would draw the page again with the pending message, and the
        // outcome would be lost.
        try {
          await finished("#jobs", done, (m) => showJobs(c, m));
        } finally {
          jobsBusy = false;
        }
      })
      .catch((e) => {
        jobsBusy = false;
        button.disabled = false;
        put(status, notice("error", reverted(e)));
      });
  };
  try {
    // The orders up to the head the live watch starts from: read side by side, the watch could
    // start past an order the list had not yet seen (a cached block number), and never show it.
    const head = await app.client.getBlock({ blockTag: "latest" });
    const jobs = await myJobs(app.client, c, account, head.number);
    await learnTokens(c, jobs.map((j) => j.token));
    // A newer render (a refresh) started meanwhile: it draws the page and watches its own jobs;
    // this one's watch, started last, would follow the older list.
    if (!current(seq)) return;
    // Live: what the chain logs about these jobs (or a new order of this account) re-reads them,
    // keeping the last message and any amount typed.
    watchJobs(c, account, jobs.map((j) => j.id), jobs.map((j) => j.module), head.number, () => {
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
            const refund = await cancel(app.client, c, wallet, account, job);
            return notice("info", `Cancelled ${job.id}; refunded ${amount(c, job.token, refund)}.`);
          }),
        topUp: (job, input, button) => {
          const token = tokenOf(c, job.token);
          const units = tokenUnits(input.value, token?.decimals ?? 18);
          if (units === undefined) {
            put(status, notice("error", `amount: "${input.value}" is not an amount of ${token?.symbol ?? "the token"} (e.g. 1.5)`));
            return;
          }
          if (units === 0n) {
            put(status, notice("error", "amount: must be more than zero"));
            return;
          }
          attempt(button, `Topping up ${job.id} by ${amount(c, job.token, units)}...`, async () => {
            const escrow = await topUp(app.client, c, wallet, account, job, units, (what) =>
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
            const r = await closeLease(app.client, c, wallet, account, job);
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
