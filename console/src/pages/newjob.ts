// New job: a spec from the form or TOML, checked by the CLI's code, then one permit signature (or,
// for a token without a permit, an approval) and one transaction (see ../newjob.ts).

import { type Address, formatUnits } from "viem";
import { app, beginRender, chainName, field, finished, input, putPage } from "../app";
import { type Config, contract } from "../config";
import { h, notice, put } from "../dom";
import { reverted } from "../jobs";
import { type CheckedOrder, checkSpec, payment, specToml, submitOrder } from "../newjob";

/** New job: the form (or TOML), checked by the CLI's code, then one signature and one transaction. */
export function showNewJob(c: Config): void {
  const seq = beginRender();
  const tokens = c.deployments.tokens;
  const name = input({ id: "f-name", value: "matmul from the console" });
  const n = input({ id: "f-n", type: "number", min: "1", value: "256" });
  const seed = input({ id: "f-seed", type: "number", min: "0", value: "42" });
  const gpu = h(
    "select",
    { id: "f-gpu" },
    h("option", { value: "any" }, "any"),
    ...c.gpuClasses.map((g) => h("option", { value: g }, g)),
  ) as HTMLSelectElement;
  const gpuCount = input({ id: "f-count", type: "number", min: "1", value: "1" });
  const perHour = input({ id: "f-price", value: "2.00", inputmode: "decimal" });
  const duration = input({ id: "f-duration", value: "10m" });
  const bidWindow = input({ id: "f-window", value: "30s" });
  const collateral = input({ id: "f-collateral", value: "10" });
  const token = h(
    "select",
    { id: "f-token" },
    ...tokens.map((t) => h("option", { value: t.symbol }, t.symbol)),
  ) as HTMLSelectElement;
  const instant = input({ id: "f-instant", type: "checkbox" });
  const toml = h("textarea", { id: "spec", rows: "18", cols: "72", spellcheck: "false" }) as HTMLTextAreaElement;
  const checkButton = h("button", { type: "button" }, "Check") as HTMLButtonElement;
  const submitButton = h("button", { type: "button", disabled: "" }, "Submit") as HTMLButtonElement;
  const status = h("div", { "aria-live": "polite", id: "new-status" });
  let checked: CheckedOrder | undefined;
  // How the checked order's token pays its escrow.
  let how: "permit" | "approve" = "permit";
  // Any change to the spec makes the last check stale (one still running too): Submit waits for a
  // new one.
  let edits = 0;
  const stale = () => {
    edits += 1;
    checked = undefined;
    submitButton.disabled = true;
  };
  toml.addEventListener("input", stale);
  const fill = () => {
    stale();
    toml.value = specToml({
      name: name.value,
      n: Number(n.value),
      seed: Number(seed.value),
      gpu: gpu.value,
      gpuCount: Number(gpuCount.value),
      maxPerHour: perHour.value,
      maxDuration: duration.value,
      bidWindow: bidWindow.value,
      collateral: collateral.value,
      token: token.value,
      instant: instant.checked,
    });
  };
  fill();
  const fillButton = h("button", { type: "button" }, "Write the form into the spec");
  fillButton.addEventListener("click", fill);
  const summary = (o: CheckedOrder) =>
    h(
      "div",
      { class: "summary" },
      h("pre", {}, o.human),
      h(
        "p",
        {},
        how === "permit" ? "Submitting signs one permit for " : "Submitting approves ",
        h("strong", { id: "escrow-amount" }, `${formatUnits(BigInt(o.order.deposit), o.token.decimals)} ${o.token.symbol}`),
        " to the market ",
        h("code", {}, contract(c, "Market").address),
        " (the escrow; what the lease does not spend comes back), then one transaction",
        how === "permit"
          ? "."
          : ` places the order (${o.token.symbol} has no EIP-2612 permit: the approval is a transaction of its own).`,
      ),
    );
  checkButton.addEventListener("click", async () => {
    checkButton.disabled = true;
    submitButton.disabled = true;
    put(status, notice("info", "Checking the spec..."));
    const at = edits;
    try {
      const order = await checkSpec(toml.value);
      const paid = await payment(app.client, c, order.token);
      if (at !== edits) {
        put(status, notice("info", "The spec changed while it was being checked: check it again."));
        return;
      }
      how = paid;
      checked = order;
      put(status, summary(checked));
      submitButton.disabled = false;
    } catch (e) {
      checked = undefined;
      put(status, notice("error", (e as Error).message));
    } finally {
      checkButton.disabled = false;
    }
  });
  submitButton.addEventListener("click", async () => {
    if (!checked) return;
    if (!app.session?.account || app.session.chainId !== c.chainId) {
      put(status, notice("error", `Connect a wallet on ${chainName(c)} first; nothing was signed.`));
      return;
    }
    const order = checked;
    submitButton.disabled = true;
    checkButton.disabled = true;
    const step = h("div", {});
    put(status, summary(order), step);
    try {
      const done = await submitOrder(
        app.client,
        c,
        app.session.wallet.provider,
        app.session.account as Address,
        order,
        (p, what) => {
          put(
            step,
            notice(
              "info",
              `${what} It asks for ${formatUnits(p.value, p.token.decimals)} ${p.token.symbol} to ${p.spender}.`,
            ),
          );
        },
      );
      const ordered = h(
        "div",
        {},
        notice("info", `Ordered ${done.orderId} (transaction ${done.tx}, block ${done.block}).`),
        h("p", {}, h("a", { href: "#jobs" }, "Follow it in My jobs")),
      );
      await finished("#new", ordered, (m) => put(status, m));
    } catch (e) {
      // WEB-04: nothing was created; the spec and its check stand, and Submit can be pressed again.
      await finished("#new", h("div", {}, summary(order), notice("error", reverted(e))), (m) => put(status, m));
      submitButton.disabled = false;
    } finally {
      checkButton.disabled = false;
    }
  });
  putPage(
    seq,
    h("h2", {}, "New job"),
    h(
      "p",
      {},
      "A built-in matmul_i8 job from the form, or any spec in the CLI's TOML format (see examples/ in the repository) pasted below.",
    ),
    h(
      "fieldset",
      { class: "form" },
      h("legend", {}, "matmul_i8"),
      field("Name", name),
      field("Matrix size n", n),
      field("Seed", seed),
      field("GPU class", gpu),
      field("GPUs", gpuCount),
      field("Max price per hour", perHour),
      field("Max duration", duration),
      field("Bid window", bidWindow),
      field("Provider collateral", collateral),
      field("Token", token),
      field("Instant (first bid wins)", instant),
      fillButton,
    ),
    field("Spec (TOML)", toml),
    h("p", {}, checkButton, " ", submitButton),
    status,
  );
}
