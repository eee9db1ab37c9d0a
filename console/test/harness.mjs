// The browser test's harness (console/test/browser.mjs): the processes it starts, stopped however
// the test ends; waiting on a condition, never a blind sleep; checks that count their failures;
// the devnet's chain as cast reads it; the EIP-6963 test wallets; Chromium.

import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const bin = (name) => join(root, "target", "debug", name);
const children = [];
let failed = 0;

/** Print one check; a failed one fails the run at its end. */
export function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failed += 1;
}

/** The checks failed so far (a thrown error counts as one: see `fail`). */
export const failures = () => failed;
export const fail = () => (failed += 1);

/** Start `cmd`; its output is kept for messages, and it is stopped when the test ends. */
export function start(cmd, args, env = {}) {
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (out += d));
  children.push(p);
  return { p, output: () => out };
}

/** `f()`'s first truthy value, asked every 200 ms for at most `secs`. */
export async function until(what, secs, f) {
  const deadline = Date.now() + secs * 1000;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The text `locator` shows once it appears, within `secs`; if it never does, an error that also
 * says what the page's main area showed instead (a CI log then explains a timeout). */
export async function textOf(page, locator, secs) {
  try {
    return await locator.innerText({ timeout: secs * 1000 });
  } catch (e) {
    const shown = await page
      .locator("main")
      .innerText({ timeout: 5000 })
      .catch((e2) => `(unreadable: ${e2.message})`);
    throw new Error(`${e.message}\nthe page showed instead:\n${shown}`);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export function stopAll() {
  for (const c of children) {
    if (c.exitCode === null) c.kill("SIGINT");
  }
}
process.on("exit", stopAll);

export const LEASE_CLOSED = "LeaseClosed(bytes32,uint8,uint96,uint96,uint96,uint96,uint96,uint48,bool)";

/** The devnet at `rpc` (contracts from `deployments`), read and driven with cast. */
export function chainOf(rpc, deployments) {
  const castBin = join(root, "node_modules", ".bin", "cast");
  const cast = (...a) => execFileSync(castBin, [...a, "--rpc-url", rpc], { encoding: "utf8" });
  const contracts = JSON.parse(readFileSync(deployments, "utf8")).contracts;
  const market = contracts.Market.address;
  // Word `i` of an ABI-encoded return of static values, as cast call prints it.
  const word = (hex, i) => BigInt(`0x${hex.trim().slice(2 + 64 * i, 2 + 64 * (i + 1)) || "0"}`);
  // MarketLens.getJob's words: 0 the status (1 open, 2 leased, 3 closed, 4 cancelled, 5 faulted),
  // 4 the escrow, 16 the lease kind (2: its result posted and held).
  const jobWord = (id, i) => word(cast("call", contracts.MarketLens.address, "getJob(bytes32)", id), i);
  const lensStatus = (id) => Number(jobWord(id, 0));
  const escrowOf = (id) => jobWord(id, 4);
  const kindOf = (id) => Number(jobWord(id, 16));
  // The data words of each log `address` emitted of event `sig` (about `id`, topic 1, if given).
  const logWords = (address, sig, id) => {
    const topic = execFileSync(castBin, ["keccak", sig], { encoding: "utf8" }).trim();
    const out = cast("logs", "--address", address, "--from-block", "0", topic, ...(id ? [id] : []));
    return [...out.matchAll(/data: 0x([0-9a-f]*)/g)].map((m) => (m[1].match(/.{64}/g) ?? []).map((w) => BigInt(`0x${w}`)));
  };
  return { cast, contracts, market, word, lensStatus, escrowOf, kindOf, logWords };
}

// Two wallets, announced as extensions announce themselves: one that connects (on chain 1 at
// first), one whose user rejects every request.
// The page's init script: Playwright serializes this function, so it names nothing outside it.
export function injectWallets({ rpc, tenant }) {
  function wallet(name, uuid, behaviour) {
    const listeners = {};
    let chainId = "0x1";
    let account = tenant;
    // The user picks another account in the wallet (one anvil also holds unlocked).
    if (behaviour === "connect") {
      window.__switchAccount = (a) => {
        account = a;
        (listeners.accountsChanged ?? []).forEach((f) => f([a]));
      };
    }
    const provider = {
      async request({ method, params }) {
        // What the page asked of the wallet, for the checks (WEB-01 reads the signed payload).
        (window.__calls ??= []).push(method);
        if (method === "eth_signTypedData_v4") window.__signed = JSON.parse(params[1]);
        // `__rejectTxAfter = n`: the user confirms n transactions, then rejects the next one.
        const rejectNth = method === "eth_sendTransaction" && window.__rejectTxAfter !== undefined && window.__rejectTxAfter-- === 0;
        if (
          behaviour === "reject" ||
          rejectNth ||
          (method === "eth_sendTransaction" && window.__rejectNextTx) ||
          (method === "eth_signTypedData_v4" && window.__rejectNextSign)
        ) {
          window.__rejectNextTx = false;
          window.__rejectNextSign = false;
          throw Object.assign(new Error("User rejected the request."), { code: 4001 });
        }
        switch (method) {
          case "eth_requestAccounts":
          case "eth_accounts":
            return [account];
          case "eth_chainId":
            return chainId;
          case "wallet_switchEthereumChain":
            chainId = params[0].chainId;
            (listeners.chainChanged ?? []).forEach((f) => f(chainId));
            return null;
          // Anything else, eth_sendTransaction and eth_signTypedData_v4 included, goes to the
          // devnet, whose anvil holds the tenant's key unlocked: what is signed is the
          // page's request, unchanged.
          default: {
            const res = await fetch(rpc, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params ?? [] }),
            });
            const j = await res.json();
            if (j.error) throw Object.assign(new Error(j.error.message), { code: j.error.code });
            return j.result;
          }
        }
      },
      on(event, f) {
        (listeners[event] ??= []).push(f);
      },
    };
    const info = { uuid, name, rdns: `test.${uuid}`, icon: "data:image/svg+xml;base64,PHN2Zy8+" };
    const announce = () =>
      window.dispatchEvent(
        new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }),
      );
    window.addEventListener("eip6963:requestProvider", announce);
    announce();
  }
  wallet("Test Wallet", "test-wallet", "connect");
  wallet("Rejecting Wallet", "rejecting-wallet", "reject");
}

/** Chromium with a fresh profile (playwright's launch makes one) and the flags that keep it off
 * the network it cannot reach here. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    ],
  });
}
