// What `gridlease console` serves at /config.json: the chain the console talks to and the
// deployment on it (the same deployments/<chainId>.json the CLI and the daemons read).

import type { Address } from "viem";

export interface Deployed {
  address: Address;
  block: number;
}

export interface Token {
  symbol: string;
  address: Address;
  decimals: number;
}

export interface Config {
  chainId: number;
  rpc: string;
  /** GPU class names by bit position, from the CLI (gridlease_primitives::gpu::GPU_CLASSES). */
  gpuClasses: string[];
  deployments: {
    chainId: number;
    contracts: Record<string, Deployed>;
    tokens: Token[];
  };
}

export async function loadConfig(): Promise<Config> {
  const res = await fetch("./config.json", { cache: "no-store" });
  if (!res.ok) {
    throw new Error(
      `config.json: HTTP ${res.status}. Start the console with \`gridlease console\`, which serves it.`,
    );
  }
  const c = (await res.json()) as Config;
  for (const name of ["Market", "MarketLens", "Staking"]) {
    if (!c.deployments?.contracts?.[name]) {
      throw new Error(`the deployments file has no ${name}: deploy first (gridlease-deploy).`);
    }
  }
  return c;
}

/**
 * Learn the tokens among `addresses` that `c` does not list yet (allowed by governance after the
 * page loaded): /config.json again, whose server reads the market's tokens anew. Until then their
 * amounts would read at 18 decimals (a 6-decimal escrow shown 10^12 too small, a top-up parsed
 * wrong). A failed read leaves `c` as it was.
 */
export async function learnTokens(c: Config, addresses: Address[]): Promise<void> {
  const known = new Set(c.deployments.tokens.map((t) => t.address.toLowerCase()));
  if (addresses.every((a) => known.has(a.toLowerCase()))) return;
  try {
    const fresh = await loadConfig();
    for (const t of fresh.deployments.tokens) {
      if (!known.has(t.address.toLowerCase())) c.deployments.tokens.push(t);
    }
  } catch {
    // The page keeps what it knew.
  }
}

/** The RPC as the page shows it: its origin only (a provider's URL often carries an API key in
 * its path or query, which the page never displays). */
export function rpcOrigin(c: Config): string {
  try {
    return new URL(c.rpc).origin;
  } catch {
    return "the RPC";
  }
}

export function contract(c: Config, name: string): Deployed {
  const d = c.deployments.contracts[name];
  if (!d) throw new Error(`no ${name} in the deployments file`);
  return d;
}
