// A job's page: its phases, and its result checked in the browser (see ../job.ts).

import type { Address, Hex } from "viem";
import { app, beginRender, brief, chainName, putPage } from "../app";
import { type Config, learnTokens, rpcOrigin } from "../config";
import { h, notice, put } from "../dom";
import { type JobFacts, checkResult, jobFacts, phasesTable, proveFraud, readLogs, runCommand } from "../job";
import { reverted } from "../jobs";
import { explain } from "../wallet";
import { amount } from "../market";

/** A job: its phases, and its result checked in this browser (and proven wrong from it). */
export async function showJob(c: Config, id: Hex): Promise<void> {
  const seq = beginRender();
  const heading = h("h2", {}, `Job ${id.slice(0, 10)}...`);
  let facts: JobFacts;
  try {
    facts = await jobFacts(app.client, c, id);
    await learnTokens(c, [facts.token]);
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
            if (!app.session?.account || app.session.chainId !== c.chainId) {
              put(outcome, notice("error", `Connect a wallet on ${chainName(c)} first; nothing was sent.`), prove);
              return;
            }
            prove.disabled = true;
            try {
              const r = await proveFraud(app.client, c, app.session.wallet.provider, app.session.account as Address, facts, f);
              // The stake token is the deployment's first token (as the CLI reads it).
              const stake = c.deployments.tokens[0];
              put(
                outcome,
                notice(
                  "info",
                  `Proven: element (${f.i}, ${f.j}) is wrong on chain; the provider was slashed ${stake ? amount(c, stake.address, r.slashed) : `${r.slashed} units`} and ${amount(c, facts.token, r.refund)} refunded.`,
                ),
              );
              const again = await jobFacts(app.client, c, id);
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
    ...logsSection(c, facts),
  );
}

/**
 * The tenant's session, or why there is none: a notice put in `status` (nothing signed then).
 */
function tenantSession(c: Config, tenant: string, status: HTMLElement, what: string) {
  const s = app.session;
  if (!s?.account || s.chainId !== c.chainId) {
    put(status, notice("error", `Connect the tenant's wallet on ${chainName(c)} first; nothing was signed.`));
    return undefined;
  }
  if (s.account.toLowerCase() !== tenant.toLowerCase()) {
    put(status, notice("error", `Only the tenant (${tenant}) may ${what}: connect its account; nothing was signed.`));
    return undefined;
  }
  return s;
}

/**
 * On each click of `button`: the tenant (`tenant`, connected in the wallet) signs an access to
 * this job's `access` ("logs", "shell") for `what` it asks, then `act` runs with its session;
 * `status` says what happens, and the button waits meanwhile.
 */
function onTenantClick(
  c: Config,
  tenant: string,
  [button, status]: [HTMLButtonElement, HTMLElement],
  [access, what]: [string, string],
  act: (s: NonNullable<ReturnType<typeof tenantSession>>) => Promise<void>,
) {
  button.addEventListener("click", async () => {
    const s = tenantSession(c, tenant, status, what);
    if (!s) return;
    button.disabled = true;
    put(status, notice("info", `Sign the access to this job's ${access} in your wallet (nothing is sent on chain)...`));
    try {
      await act(s);
    } catch (e) {
      const code = (e as { code?: number; cause?: unknown }).code;
      put(status, notice("error", code !== undefined || (e as { cause?: unknown }).cause ? explain(e) : (e as Error).message));
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * The job's logs, for its tenant: each read is one signature in the wallet (an access to this
 * lease's logs at its provider's node, ten minutes long, used once), shown as text. While a
 * container job runs, a command in its container too (an access to its shell, the same way):
 * what it printed and its exit status, shown as text.
 */
function logsSection(c: Config, facts: JobFacts): HTMLElement[] {
  const leased = facts.phases.some((p) => p.name === "LeaseStarted");
  const tenant = facts.created?.tenant as string | undefined;
  if (!leased || !tenant) return [];
  const status = h("div", { "aria-live": "polite", id: "logs-status" });
  const text = h("pre", { id: "job-logs", class: "logs" });
  const read = h("button", { type: "button" }, "Read the job's logs") as HTMLButtonElement;
  onTenantClick(c, tenant, [read, status], ["logs", "read these logs"], async (s) => {
    const logs = await readLogs(c, s.wallet.provider, s.account as Address, facts);
    // Text, never markup: the job wrote it.
    text.textContent = logs === "" ? "(the job wrote nothing to its standard error)" : logs;
    put(status, notice("info", `The job's logs, from its provider's node (${new Date().toLocaleTimeString()}).`));
  });
  // Built-in jobs run no container; a finished lease's container is gone.
  // jobKind 1: the built-in matmul_i8 (0 container, 2 service).
  const builtin = Number(((facts.created?.params ?? {}) as Record<string, unknown>).jobKind) === 1;
  const ended = facts.phases.some((p) => ["LeaseClosed", "LeaseFaulted", "ResultPosted"].includes(p.name));
  if (builtin || ended) return [h("h3", {}, "Logs"), read, status, text];
  const ranStatus = h("div", { "aria-live": "polite", id: "shell-status" });
  const output = h("pre", { id: "shell-output", class: "logs" });
  const line = h("input", { id: "shell-command", type: "text", value: "nvidia-smi", "aria-label": "Command line" }) as HTMLInputElement;
  const run = h("button", { type: "button" }, "Run in its container") as HTMLButtonElement;
  onTenantClick(c, tenant, [run, ranStatus], ["shell", "run commands in its container"], async (s) => {
    const r = await runCommand(c, s.wallet.provider, s.account as Address, facts, line.value);
    // Text, never markup: the command wrote it.
    output.textContent = r.stdout + (r.stderr === "" ? "" : `\n[standard error]\n${r.stderr}`);
    put(ranStatus, notice(r.exit === 0 ? "info" : "error", `The command exited with status ${r.exit}.`));
  });
  return [
    h("h3", {}, "Logs"),
    read,
    status,
    text,
    h("h3", {}, "A command in its container"),
    h("p", {}, "Runs with /bin/sh -c in the job's container while it runs, as its user, with no input (for a terminal: ", h("code", {}, `gridlease shell ${facts.id}`), ")."),
    h("label", { for: "shell-command" }, "Command line "),
    line,
    run,
    ranStatus,
    output,
  ];
}
