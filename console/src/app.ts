// What every page of the console shares: the page element, the wallet session and the chain
// client, and how a page that read the chain is put on screen.

import type { PublicClient } from "viem";
import type { Config } from "./config";
import { h, put } from "./dom";
import type { Announced } from "./wallet";

/** Where a page is drawn. */
export const page = document.getElementById("page") as HTMLElement;

export interface Session {
  wallet: Announced;
  account?: string;
  chainId?: number;
}

/** The connected wallet (if any) and the client reading the chain (set at start). */
export const app: { session?: Session; client: PublicClient } = {
  session: undefined,
  client: undefined as unknown as PublicClient,
};

/** An error in one line, without the request viem appends (its URL may carry an API key). */
export function brief(e: unknown): string {
  const err = e as { shortMessage?: string; message?: string };
  return err.shortMessage ?? err.message ?? String(e);
}

export function chainName(c: Config): string {
  return `chain ${c.chainId}`;
}

/** Renders started: a page read from the chain is shown only if no newer one started meanwhile
 * (a slow read of the market never covers the page the user went to since). */
let renders = 0;

/** Start drawing a page: the number to give [`putPage`]. */
export function beginRender(): number {
  renders += 1;
  return renders;
}

/**
 * An action begun on page `hash` (`#jobs`) finished with `outcome`: `redraw` that page with it if
 * it is still shown, else keep the outcome in the header. A page in use since (a spec being
 * written) is not drawn over, and the user still learns what the transaction did.
 */
export async function finished(
  hash: string,
  outcome: HTMLElement,
  redraw: (outcome: HTMLElement) => Promise<void> | void,
): Promise<void> {
  if (location.hash === hash) {
    await redraw(outcome);
    return;
  }
  let kept = document.getElementById("outcomes");
  if (!kept) {
    kept = h("div", { id: "outcomes", role: "status", "aria-live": "polite" });
    document.querySelector("header")?.append(kept);
  }
  kept.append(outcome);
}

/** Whether no newer render started after `seq`. */
export function current(seq: number): boolean {
  return seq === renders;
}

/** Put `children` on the page, unless a newer render started after `seq`. */
export function putPage(seq: number, ...children: (Node | string | null | undefined | false)[]): void {
  if (current(seq)) put(page, ...children);
}

export function input(attrs: Record<string, string>): HTMLInputElement {
  return h("input", attrs) as HTMLInputElement;
}

/** A labelled input. */
export function field(label: string, control: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), control);
}
