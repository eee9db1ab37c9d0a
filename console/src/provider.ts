// The provider owner's page, for an owner whose cold key is in a browser or hardware wallet: the
// provider's stake, locked collateral, unbonding and credits read from the chain; registering
// (or updating) with the operator's consent (`gridlease-provider consent` prints it on the node's
// machine, whose hot key signs it), staking with one permit signature (an approval first for a
// stake token without a permit), unbonding, withdrawing
// what has unbonded, and the provider's earnings (market credits) withdrawn. The checks and their
// words are those of `gridlease-provider register` (provider/src/owner.rs).

import type { Address, Hex, PublicClient } from "viem";
import { abi as lensAbi } from "../../target/abi/MarketLens.json";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { abi as stakingAbi } from "../../target/abi/Staking.json";
import { type Config, type Token, contract } from "./config";
import { simulateAndSend } from "./jobs";
import { inRanges } from "./logs";
import { tokenOf, tokenUnits } from "./market";
import { type PermitShown, pay } from "./permit";
import type { Eip1193 } from "./wallet";

const ZERO = "0x0000000000000000000000000000000000000000";
/** type(uint96).max: a collateral ceiling of all the stake. */
const U96_MAX = (1n << 96n) - 1n;

/** What the chain holds about a provider and its owner's credits. */
export interface ProviderState {
  operator: Address;
  capacity: { gpuClasses: bigint; gpuCount: number; vramGiB: number };
  stake: bigint;
  locked: bigint;
  ceiling: bigint;
  unbonding: bigint;
  releaseAt: number;
  /** Staking credits (slash compensation) in the stake token. */
  stakingCredit: bigint;
  /** Market credits (earnings not pushed) per payment token. */
  marketCredits: { token: Token; amount: bigint }[];
  stakeToken: Token;
  unbondingPeriod: number;
  now: number;
}

type Args = Record<string, unknown>;

export async function providerState(client: PublicClient, c: Config, owner: Address): Promise<ProviderState> {
  const staking = contract(c, "Staking").address;
  const read = (functionName: string, args: unknown[] = []) =>
    client.readContract({ address: staking, abi: stakingAbi, functionName, args }) as Promise<unknown>;
  const [info, credit, tokenAddress, period, head] = await Promise.all([
    read("providerInfo", [owner]) as Promise<Args>,
    read("creditOf", [owner]) as Promise<bigint>,
    read("stakeToken") as Promise<Address>,
    read("unbondingPeriod") as Promise<number>,
    client.getBlock({ blockTag: "latest" }),
  ]);
  const stakeToken = tokenOf(c, tokenAddress) ?? {
    symbol: tokenAddress,
    address: tokenAddress,
    decimals: 18,
  };
  const marketCredits = await Promise.all(
    c.deployments.tokens.map(async (token) => ({
      token,
      amount: (await client.readContract({
        address: contract(c, "MarketLens").address,
        abi: lensAbi,
        functionName: "creditOf",
        args: [token.address, owner],
      })) as bigint,
    })),
  );
  const cap = info.capacity as Args;
  return {
    operator: info.operator as Address,
    capacity: { gpuClasses: BigInt(cap.gpuClasses as bigint), gpuCount: Number(cap.gpuCount), vramGiB: Number(cap.vramGiB) },
    stake: BigInt(info.stake as bigint),
    locked: BigInt(info.locked as bigint),
    ceiling: BigInt(info.collateralCeiling as bigint),
    unbonding: BigInt(info.unbonding as bigint),
    releaseAt: Number(info.releaseAt),
    stakingCredit: credit,
    marketCredits,
    stakeToken,
    unbondingPeriod: Number(period),
    now: Number(head.timestamp),
  };
}

/** An operator's consent as `gridlease-provider consent` prints it. */
export interface ConsentFile {
  chain_id: number;
  staking: Address;
  provider: Address;
  operator: Address;
  nonce: string | number;
  deadline: number;
  signature: Hex;
  capacity: { gpu_classes: number; gpu_count: number; vram_gib: number };
}

function parseConsent(text: string): ConsentFile {
  let f: ConsentFile;
  try {
    f = JSON.parse(text) as ConsentFile;
  } catch {
    throw new Error("the consent is not JSON: paste what `gridlease-provider consent` printed on the node's machine");
  }
  const hex = (x: unknown, len: number) => typeof x === "string" && new RegExp(`^0x[0-9a-fA-F]{${len}}$`).test(x);
  if (
    !hex(f.staking, 40) ||
    !hex(f.provider, 40) ||
    !hex(f.operator, 40) ||
    !hex(f.signature, 130) ||
    typeof f.deadline !== "number" ||
    typeof f.chain_id !== "number" ||
    typeof f.capacity?.gpu_classes !== "number"
  ) {
    throw new Error("the consent lacks a field `gridlease-provider consent` writes: paste its whole output");
  }
  return f;
}

/**
 * Register (or update) `owner` as a provider with the operator's consent `text`, metadata URI
 * `metadata` and collateral ceiling `ceiling` ("all" or an amount of the stake token). The checks
 * `gridlease-provider register` makes, in its words; simulated, then sent through the wallet.
 */
export async function register(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  owner: Address,
  text: string,
  metadata: string,
  ceiling: string,
): Promise<{ updated: boolean; operator: Address }> {
  const consent = parseConsent(text);
  const staking = contract(c, "Staking").address;
  if (consent.chain_id !== c.chainId || consent.staking.toLowerCase() !== staking.toLowerCase()) {
    throw new Error(
      `the consent is for Staking ${consent.staking} on chain ${consent.chain_id}, this market's chain is ${c.chainId} with Staking ${staking}: sign it with the node's config for this chain`,
    );
  }
  if (consent.provider.toLowerCase() !== owner.toLowerCase()) {
    throw new Error(
      `the consent lets ${consent.provider} use the operator key, not this wallet ${owner}: set wallet.owner on the node to ${owner} and sign it again`,
    );
  }
  const state = await providerState(client, c, owner);
  if (consent.deadline < state.now) {
    throw new Error(
      `the consent expired ${state.now - consent.deadline} s ago: sign a new one with \`gridlease-provider consent\` on the node`,
    );
  }
  const nonce = (await client.readContract({
    address: staking,
    abi: stakingAbi,
    functionName: "operatorNonce",
    args: [consent.operator],
  })) as bigint;
  if (nonce !== BigInt(consent.nonce)) {
    throw new Error(
      `the consent was signed for nonce ${BigInt(consent.nonce)} of the operator, which is at ${nonce} now (used or superseded): sign a new one with \`gridlease-provider consent\` on the node`,
    );
  }
  let ceilingUnits = U96_MAX;
  if (ceiling.trim() !== "all") {
    const v = tokenUnits(ceiling, state.stakeToken.decimals);
    if (v === undefined) {
      throw new Error(`ceiling "${ceiling}": "all", or an amount of ${state.stakeToken.symbol} (e.g. 500)`);
    }
    if (v > U96_MAX) throw new Error(`ceiling "${ceiling}": too large`);
    ceilingUnits = v;
  }
  if (!/^https?:\/\/\S+$/.test(metadata)) {
    throw new Error(`metadata URI "${metadata}": the node's public http(s) URL (keepers fetch signed bids there)`);
  }
  const updated = state.operator !== ZERO;
  await simulateAndSend(client, c, wallet, owner, {
    address: staking,
    abi: stakingAbi,
    functionName: updated ? "updateProvider" : "register",
    args: [
      consent.operator,
      {
        gpuClasses: BigInt(consent.capacity.gpu_classes),
        gpuCount: consent.capacity.gpu_count,
        vramGiB: consent.capacity.vram_gib,
      },
      metadata,
      ceilingUnits,
      BigInt(consent.deadline),
      consent.signature,
    ],
  });
  return { updated, operator: consent.operator };
}

/**
 * Stake `units` with one permit signature (to Staking) and one transaction; a stake token without
 * a permit (USDT and its like) is approved to Staking first (see [approveFor]).
 */
export async function stake(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  owner: Address,
  token: Token,
  units: bigint,
  show: (p: PermitShown, step: string) => void,
): Promise<void> {
  const staking = contract(c, "Staking").address;
  await pay(
    client,
    c,
    wallet,
    owner,
    token,
    { address: staking, name: "Staking" },
    units,
    {
      approved: { address: staking, abi: stakingAbi, functionName: "stake", args: [units] },
      permitted: (p) => ({
        address: staking,
        abi: stakingAbi,
        functionName: "stakeWithPermit",
        args: [units, p.deadline, p.v, p.r, p.s],
      }),
    },
    (held) => `wallet ${owner} holds ${held}, less than the stake`,
    show,
  );
}

/** A Staking call from the owner (unbond, withdrawUnbonded, withdrawCredit), simulated first. */
export async function stakingCall(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  owner: Address,
  functionName: "unbond" | "withdrawUnbonded" | "withdrawCredit",
  args: unknown[],
): Promise<void> {
  await simulateAndSend(client, c, wallet, owner, {
    address: contract(c, "Staking").address,
    abi: stakingAbi,
    functionName,
    args,
  });
}

/** Withdraw the owner's market credit in `token` (its earnings not pushed) to itself. */
export async function withdrawEarnings(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  owner: Address,
  token: Token,
): Promise<void> {
  await simulateAndSend(client, c, wallet, owner, {
    address: contract(c, "Market").address,
    abi: marketAbi,
    functionName: "withdraw",
    args: [token.address, owner],
  });
}

/** What the provider earned and lost, from the market's events. */
export interface Earnings {
  /** Leases it won (LeaseStarted naming it). */
  leases: number;
  /** Paid to it by its closed leases (LeaseClosed.toProvider), per token. */
  paid: { token: Token; amount: bigint }[];
  /** Its leases faulted (a fault proven: its collateral slashed). */
  faulted: number;
}

/** `owner`'s leases and what their closes paid it, read from the market's logs. */
export async function earnings(client: PublicClient, c: Config, owner: Address): Promise<Earnings> {
  const market = contract(c, "Market");
  const [from, head] = [BigInt(market.block), await client.getBlockNumber({ cacheTime: 0 })];
  // The market's `eventName` logs matching `args`, from its deployment block to `head`.
  const events = (eventName: "LeaseStarted" | "OrderCreated" | "LeaseClosed" | "LeaseFaulted", args: object) =>
    inRanges(
      client,
      from,
      (fromBlock, toBlock) =>
        client.getContractEvents({
          address: market.address,
          abi: marketAbi,
          eventName,
          args: args as never,
          fromBlock,
          toBlock,
        }),
      head,
    );
  const started = await events("LeaseStarted", { provider: owner });
  const ids = started.map((l) => (l as unknown as { args: { orderId: Hex } }).args.orderId);
  const paid = new Map<string, bigint>();
  let faulted = 0;
  // A log filter names at most 100 ids (RPCs cap a topic's alternatives).
  for (let i = 0; i < ids.length; i += 100) {
    const chunk = ids.slice(i, i + 100);
    const [created, closed, faults] = await Promise.all(
      (["OrderCreated", "LeaseClosed", "LeaseFaulted"] as const).map((eventName) =>
        events(eventName, { [eventName === "OrderCreated" ? "orderId" : "leaseId"]: chunk }),
      ),
    );
    const tokenOf = new Map(
      created.map((l) => {
        const a = (l as unknown as { args: { orderId: Hex; token: Address } }).args;
        return [a.orderId, a.token.toLowerCase()];
      }),
    );
    for (const l of closed) {
      const a = (l as unknown as { args: { leaseId: Hex; toProvider: bigint } }).args;
      const t = tokenOf.get(a.leaseId) ?? "";
      paid.set(t, (paid.get(t) ?? 0n) + BigInt(a.toProvider));
    }
    faulted += faults.length;
  }
  // The tokens it was paid in; none yet reads as 0 of the first (the stake token).
  const all = c.deployments.tokens.map((token) => ({ token, amount: paid.get(token.address.toLowerCase()) ?? 0n }));
  const some = all.filter((p) => p.amount > 0n);
  return { leases: ids.length, paid: some.length > 0 ? some : all.slice(0, 1), faulted };
}
