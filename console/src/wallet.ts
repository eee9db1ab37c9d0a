// The wallet people already have, found through EIP-6963 (every injected wallet announces
// itself; no `window.ethereum` race between extensions), spoken to through EIP-1193.

export interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
  on?(event: string, handler: (...args: unknown[]) => void): void;
}

export interface WalletInfo {
  uuid: string;
  name: string;
  icon: string;
  rdns: string;
}

export interface Announced {
  info: WalletInfo;
  provider: Eip1193;
}

/** Call `found` for each wallet that announces itself, now and later. */
export function discover(found: (w: Announced) => void): void {
  const seen = new Set<string>();
  window.addEventListener("eip6963:announceProvider", (e) => {
    const detail = (e as CustomEvent<Announced>).detail;
    if (!detail?.info?.uuid || !detail.provider || seen.has(detail.info.uuid)) return;
    seen.add(detail.info.uuid);
    found(detail);
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
}

/** An icon only when it is an image data URI (a wallet's icon is never fetched). */
export function safeIcon(icon: string): string | undefined {
  return /^data:image\/(png|svg\+xml|webp|jpeg|gif);/.test(icon) ? icon : undefined;
}

/** What a wallet's refusal means to the user: rejected (4001), unknown chain (4902), or other. */
export function explain(err: unknown): string {
  // viem wraps the wallet's error (TransactionExecutionError -> UserRejectedRequestError -> ...):
  // the first error in the chain with a code is the wallet's answer.
  let e = err as { code?: number; message?: string; shortMessage?: string; cause?: unknown };
  for (let i = 0; i < 8 && e && e.code === undefined && e.cause; i++) {
    e = e.cause as typeof e;
  }
  if (e?.code === 4001) return "You rejected the request in your wallet; nothing was signed or sent.";
  if (e?.code === 4902) {
    return "Your wallet does not know this chain: add it in the wallet (its RPC is in the footer), then switch.";
  }
  const top = err as { shortMessage?: string; message?: string };
  return `The wallet answered: ${top?.shortMessage ?? top?.message ?? String(err)}`;
}
