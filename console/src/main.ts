// The gridlease console: the market read from the chain, and the user's own wallet (found through
// EIP-6963) checked against the market's chain before anything is signed.

import { type Hex, createPublicClient, http } from "viem";
import { app, chainName, page } from "./app";
import { type Config, loadConfig, rpcOrigin } from "./config";
import { h, notice, put } from "./dom";
import { showJob } from "./pages/job";
import { showJobs, stopWatching } from "./pages/jobs";
import { showMarket } from "./pages/market";
import { showNewJob } from "./pages/newjob";
import { showProvider } from "./pages/provider";
import { discover, explain, safeIcon } from "./wallet";
import "./style.css";

const walletBox = document.getElementById("wallet") as HTMLElement;

let config: Config;

/** The page the address names: `#jobs`, `#new`, `#job/<id>`, else the market. */
async function route(): Promise<void> {
  stopWatching();
  const job = /^#job\/(0x[0-9a-fA-F]{64})$/.exec(location.hash)?.[1];
  if (location.hash === "#jobs") await showJobs(config);
  else if (location.hash === "#new") showNewJob(config);
  else if (job) await showJob(config, job as Hex);
  else if (location.hash === "#provider") await showProvider(config);
  else await showMarket(config);
}


async function refreshWallet(c: Config): Promise<void> {
  if (!app.session) return;
  const { provider, info } = app.session.wallet;
  try {
    const [chainHex, accounts] = await Promise.all([
      provider.request({ method: "eth_chainId" }) as Promise<string>,
      provider.request({ method: "eth_accounts" }) as Promise<string[]>,
    ]);
    app.session.chainId = Number.parseInt(chainHex, 16);
    app.session.account = accounts[0];
  } catch (e) {
    put(walletBox, notice("error", explain(e)));
    return;
  }
  if (app.session.chainId !== c.chainId) {
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
        `${info.name} is on chain ${app.session.chainId}, this market is on ${chainName(c)}: switch networks before signing anything.`,
      ),
      button,
    );
    return;
  }
  put(
    walletBox,
    h("span", { class: "account" }, `${info.name}: `, h("code", {}, app.session.account ?? "no account")),
  );
  // New job is not drawn again: it reads the wallet only at Submit, and a spec being written (or
  // a submit under way) must not be wiped by a wallet connecting or switching.
  if (location.hash === "#jobs") await showJobs(c);
  if (location.hash === "#provider") await showProvider(c);
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
      app.session = { wallet: w };
      w.provider.on?.("chainChanged", () => void refreshWallet(c));
      w.provider.on?.("accountsChanged", () => void refreshWallet(c));
      await refreshWallet(c);
    });
    list.append(h("li", {}, button));
    put(walletBox, list);
  });
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
  app.client = createPublicClient({ transport: http(c.rpc), pollingInterval: 1_000 });
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
