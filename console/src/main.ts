// The gridlease console: the market read from the chain, and the user's own wallet (found through
// EIP-6963) checked against the market's chain before anything is signed.

import { type Address, type PublicClient, createPublicClient, http } from "viem";
import { type Config, loadConfig, rpcOrigin } from "./config";
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
import { cancel, jobsTable, myJobs, reverted } from "./jobs";
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

/** The page the address names: `#jobs`, else the market. */
async function route(): Promise<void> {
  if (location.hash === "#jobs") await showJobs(config);
  else await showMarket(config);
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
}

/** My jobs, with `message` (what the last action did) above the table. */
async function showJobs(c: Config, message?: HTMLElement): Promise<void> {
  const heading = h("h2", {}, "My jobs");
  if (!session?.account || session.chainId !== c.chainId) {
    put(page, heading, notice("info", `Connect a wallet on ${chainName(c)} to see your orders and leases.`));
    return;
  }
  const account = session.account as Address;
  const wallet = session.wallet.provider;
  const status = h("div", { "aria-live": "polite" }, message);
  try {
    const jobs = await myJobs(client, c, account);
    put(
      page,
      heading,
      status,
      jobsTable(c, jobs, (job, button) => {
        button.disabled = true;
        put(status, notice("info", `Cancelling ${job.id}: confirm in your wallet...`));
        cancel(client, c, wallet, account, job)
          .then((refund) =>
            showJobs(c, notice("info", `Cancelled ${job.id}; refunded ${amount(c, job.token, refund)}.`)),
          )
          .catch((e) => {
            // WEB-04: nothing changed; the order is still open and can be cancelled again.
            button.disabled = false;
            put(status, notice("error", reverted(e)));
          });
      }),
    );
  } catch (e) {
    put(page, heading, notice("error", `Cannot read your orders from ${rpcOrigin(c)}: ${brief(e)}`));
  }
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
  try {
    // The market's logs are read once and shared by the three tables.
    const [created, started] = await Promise.all([orderLogs(client, c), leaseLogs(client, c)]);
    const [orders, provs] = await Promise.all([
      openOrders(client, c, created),
      providers(client, c, started),
    ]);
    const cleared = clearingPrices(created, started);
    put(
      page,
      h("h2", {}, "Market"),
      h("h3", {}, "Orders taking bids"),
      ordersTable(c, orders),
      h("h3", {}, "Clearing prices by GPU class"),
      clearedTable(c, cleared),
      h("h3", {}, "Providers"),
      providersTable(c, provs),
    );
  } catch (e) {
    put(
      page,
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
  client = createPublicClient({ transport: http(c.rpc) });
  offerWallets(c);
  window.addEventListener("hashchange", () => void route());
  await route();
}

void start();
