// A job's page: its phases from the chain's events, its posted result downloaded (through the
// console's server, which may reach the provider) and checked here, against the chain, with the
// browser's own implementation (verify.ts): the Merkle root and size, and for a seeded matmul_i8
// job Freivalds' check with a secret random vector. A wrong product is proven from the page
// (Results.proveMatmulFraud through the wallet): the provider's collateral is slashed and the
// escrow comes back. Its tenant reads the job's logs from the provider's node, each read signed
// in the wallet (readLogs), and runs commands in its running container (runCommand).

import {
  type Address,
  type Hex,
  type PublicClient,
  bytesToHex,
  createWalletClient,
  custom,
  decodeEventLog,
  hexToBytes,
  hexToString,
  toHex,
} from "viem";
import { abi as marketAbi } from "../../target/abi/Market.json";
import { abi as resultsAbi } from "../../target/abi/Results.json";
import { type Config, contract } from "./config";
import { h } from "./dom";
import { chainOf, marketEvent, simulateAndSend } from "./jobs";
import { inRanges } from "./logs";
import { amount, readJob } from "./market";
import { type Fraud, generate, localize, randomSeed, resultRoot, specHash } from "./verify";
import type { Eip1193 } from "./wallet";

type Args = Record<string, unknown>;

/** One event about the job, decoded. */
export interface Phase {
  name: string;
  block: bigint;
  at: number;
  args: Args;
}

/** What the page knows of a job. */
export interface JobFacts {
  id: Hex;
  module: Address;
  token: Address;
  phases: Phase[];
  created?: Args;
  posted?: { root: Hex; size: bigint; uri: string };
}

const abi = [...marketAbi, ...resultsAbi];

/**
 * The market, the deployment's results module and `modules` (leases' own; zero for a lease not
 * bound to one), each once: the addresses whose logs tell a job's story.
 */
export function modulesOf(c: Config, modules: Address[]): Address[] {
  const all = [contract(c, "Market").address, contract(c, "Results").address, ...modules];
  const seen = new Set<string>();
  return all.filter((a) => {
    const k = a.toLowerCase();
    if (/^0x0{40}$/.test(k) || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Every event the market and the results module logged about `id` (topic 1), in order. */
export async function jobFacts(client: PublicClient, c: Config, id: Hex): Promise<JobFacts> {
  const market = contract(c, "Market");
  const job = await readJob(client, c, id);
  // The lease's own results module (a module governance added later logs there), besides the
  // deployment's.
  const addresses = modulesOf(c, [job.module as Address]);
  const raw = await inRanges(
    client,
    BigInt(market.block),
    (fromBlock, toBlock) =>
      client.request({
        method: "eth_getLogs",
        params: [{ address: addresses, topics: [null, id], fromBlock: toHex(fromBlock), toBlock: toHex(toBlock) }],
      }) as Promise<{ topics: Hex[]; data: Hex; blockNumber: Hex }[]>,
  );
  // Each block's time, read once and all at once.
  const blocks = [...new Set(raw.map((l) => l.blockNumber))];
  const stamps = await Promise.all(blocks.map((b) => client.getBlock({ blockNumber: BigInt(b) })));
  const times = new Map(blocks.map((b, i) => [b, Number(stamps[i].timestamp)]));
  const phases: Phase[] = [];
  for (const log of raw) {
    let decoded: { eventName: string; args: unknown };
    try {
      decoded = decodeEventLog({ abi, topics: log.topics as [Hex, ...Hex[]], data: log.data }) as typeof decoded;
    } catch {
      continue;
    }
    phases.push({
      name: decoded.eventName,
      block: BigInt(log.blockNumber),
      at: times.get(log.blockNumber) ?? 0,
      args: decoded.args as Args,
    });
  }
  const created = phases.find((p) => p.name === "OrderCreated")?.args;
  const posted = [...phases].reverse().find((p) => p.name === "ResultPosted")?.args;
  return {
    id,
    module: job.module as Address,
    // The order's token (a closed lease's view no longer names one).
    token: ((created?.token as Address | undefined) ?? job.token) as Address,
    phases,
    created,
    posted: posted
      ? { root: posted.root as Hex, size: BigInt(posted.size as bigint), uri: String(posted.uri) }
      : undefined,
  };
}

/** A fault kind (an ASCII name in a bytes32, `wrong-result`), as text; never markup. */
function kindText(kind: Hex): string {
  const name = hexToString(kind, { size: 32 }).replace(/\0+$/, "");
  return /^[a-z-]{1,32}$/.test(name) ? name : kind;
}

/** A phase in words (amounts in token units; strangers' text stays text). */
export function describe(c: Config, f: JobFacts, p: Phase): string {
  const a = p.args;
  const money = (v: unknown) => amount(c, f.token, BigInt(v as bigint));
  switch (p.name) {
    case "OrderCreated":
      return `ordered: ${money((a.params as Args).deposit)} of escrow`;
    case "BidPlaced":
      return `bid by ${a.provider}`;
    case "LeaseStarted":
      return `leased to ${a.provider}`;
    case "LeaseAcknowledged":
      return `acknowledged by its provider (${a.secondsAfterStart} s after the start)`;
    case "ResultPosted":
      return `result posted: ${a.size} bytes, root ${a.root}`;
    case "ChunkChallenged":
      return `chunk ${a.index} challenged by ${a.challenger}`;
    case "ChunkRevealed":
      return `chunk ${a.index} revealed on chain`;
    case "ToppedUp":
      return `topped up by ${money(a.amount)}; escrow ${money(a.escrow)}`;
    case "LeaseSettled":
      return `settled ${money(a.amount)}`;
    case "LowBalance":
      return `escrow running low: ${money(a.escrowLeft)} left`;
    case "MatmulFraudProven":
      return `wrong element (${a.i}, ${a.j}) proven: claimed ${a.claimed}, correct ${a.correct}`;
    case "FaultProven":
      return `fault proven (${kindText(a.kind as Hex)}) by ${a.reporter}`;
    case "LeaseFaulted":
      return `faulted (${kindText(a.kind as Hex)}): ${money(a.refund)} refunded, the provider slashed`;
    case "LeaseClosed":
      return `closed: paid ${money(a.paid)}, refunded ${money(a.refund)}`;
    case "OrderCancelled":
      return `cancelled: refunded ${money(a.refund)}`;
    case "CertificateBound": {
      // ACC-03: the key its node serves the service over TLS with, as curl pins it.
      const pin = `sha256//${btoa(String.fromCharCode(...hexToBytes(a.spkiHash as Hex)))}`;
      return `TLS key bound by its provider's node: ${pin} (reach the service with gridlease connect ${f.id}, or curl -k --pinnedpubkey ${pin})`;
    }
    default:
      return p.name;
  }
}

/** The seeded matmul_i8 job an order's spec describes, when its data: URI matches its hash. */
export function seededJob(created: Args): { seed: Hex; m: number; k: number; n: number } | undefined {
  const params = created.params as Args;
  const uri = String(params.specURI);
  const prefix = "data:application/json;base64,";
  if (!uri.startsWith(prefix)) return undefined;
  try {
    const spec = JSON.parse(atob(uri.slice(prefix.length))) as {
      workload?: { kind?: string; seed?: Hex; m?: number; k?: number; n?: number };
    };
    const w = spec.workload;
    if (w?.kind !== "matmul_i8" || !w.seed || !w.m || !w.k || !w.n) return undefined;
    const job = { seed: w.seed, m: w.m, k: w.k, n: w.n };
    // The spec the page read is the one the order committed to, or it is not used.
    return specHash(job.seed, job.m, job.k, job.n) === params.specHash ? job : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A fresh access of the tenant (`account`) to `action` ("logs", "shell") of lease `f` at its
 * provider's node, signed in the wallet (EIP-712, no transaction): the `x-gridlease-auth` value,
 * `<expiry>:<nonce>:<signature>`, for this lease, its provider, an expiry ten minutes on and a
 * fresh nonce. The node checks the signer is the lease's tenant and takes each access once.
 */
async function signAccess(c: Config, wallet: Eip1193, account: Address, f: JobFacts, action: string): Promise<string> {
  const provider = [...f.phases].reverse().find((p) => p.name === "LeaseStarted")?.args.provider as Address | undefined;
  if (!provider) throw new Error(`this order was never leased: it has no job, so no ${action}`);
  const nonce = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
  const expiry = BigInt(Math.floor(Date.now() / 1000) + 600);
  const walletClient = createWalletClient({ account, chain: chainOf(c), transport: custom(wallet) });
  const signature = await walletClient.signTypedData({
    account,
    domain: { name: "gridlease access", version: "1", chainId: c.chainId, verifyingContract: contract(c, "Market").address },
    types: {
      Access: [
        { name: "action", type: "string" },
        { name: "lease", type: "bytes32" },
        { name: "provider", type: "address" },
        { name: "expiry", type: "uint64" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "Access",
    message: { action, lease: f.id, provider, expiry, nonce },
  });
  return `${expiry}:${nonce}:${signature}`;
}

/** POST `body` to the console's own server at `path`; the answer, or its error as thrown. */
async function askServer(path: string, body: object): Promise<Response> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { error?: string };
    throw new Error(e.error ?? `the console's server answered HTTP ${res.status}`);
  }
  return res;
}

/**
 * The job's logs (the tail of its standard error) from its provider's node, for its tenant
 * (`account`): one access signed in the wallet (`signAccess`), sent through the console's
 * server, which hands it to the node.
 */
export async function readLogs(c: Config, wallet: Eip1193, account: Address, f: JobFacts): Promise<string> {
  const auth = await signAccess(c, wallet, account, f, "logs");
  return (await askServer("./api/logs", { lease: f.id, auth })).text();
}

/** What a command run in the job's container printed, and how it ended. */
export interface Ran {
  stdout: string;
  stderr: string;
  exit: number;
}

/**
 * Run `command` (a command line for `/bin/sh -c`) in the job's running container, for its tenant
 * (`account`): one access to the lease's shell signed in the wallet, sent through the console's
 * server, which runs the session with the node (no input; output capped) and hands back what the
 * command printed and its exit status.
 */
export async function runCommand(c: Config, wallet: Eip1193, account: Address, f: JobFacts, command: string): Promise<Ran> {
  const auth = await signAccess(c, wallet, account, f, "shell");
  return (await askServer("./api/shell", { lease: f.id, auth, command })).json() as Promise<Ran>;
}

/** What checking the result found. */
export type Verdict =
  | { kind: "mismatch"; why: string }
  | { kind: "matches"; freivalds: "correct" | "not-matmul" }
  | { kind: "wrong"; fraud: Fraud };

/** Download the posted result through the console's server and check it here. */
export async function checkResult(f: JobFacts): Promise<Verdict> {
  if (!f.posted) throw new Error("no result is posted");
  const res = await fetch("./api/result", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ lease: f.id }),
  });
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { error?: string };
    throw new Error(e.error ?? `the console's server answered HTTP ${res.status}`);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (BigInt(bytes.length) !== f.posted.size) {
    return { kind: "mismatch", why: `the provider served ${bytes.length} bytes; ${f.posted.size} were posted` };
  }
  const root = resultRoot(bytes);
  if (root !== f.posted.root) {
    return { kind: "mismatch", why: `the bytes served hash to ${root}; the chain holds ${f.posted.root}` };
  }
  const job = f.created && seededJob(f.created);
  if (!job) return { kind: "matches", freivalds: "not-matmul" };
  if (BigInt(job.m * job.n * 4) !== f.posted.size) {
    return { kind: "mismatch", why: `a ${job.m}x${job.n} product is ${job.m * job.n * 4} bytes` };
  }
  const a = generate(job.seed, "A", 0, job.m * job.k);
  const bt = generate(job.seed, "B", 0, job.n * job.k);
  const fraud = localize(a, bt, bytes, job.m, job.k, job.n, randomSeed());
  return fraud ? { kind: "wrong", fraud } : { kind: "matches", freivalds: "correct" };
}

/** Prove `fraud` on lease `f` from `account` (simulated first); returns what the market slashed. */
export async function proveFraud(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  f: JobFacts,
  fraud: Fraud,
): Promise<{ slashed: bigint; refund: bigint }> {
  const created = f.created as Args;
  const job = seededJob(created);
  if (!job || !f.posted) throw new Error("only a seeded matmul_i8 result can be proven wrong here");
  const receipt = await simulateAndSend(client, c, wallet, account, {
    address: f.module,
    abi: resultsAbi,
    functionName: "proveMatmulFraud",
    args: [
      f.id,
      created.tenant as Address,
      created.params,
      job,
      f.posted.root,
      f.posted.size,
      BigInt(fraud.i),
      BigInt(fraud.j),
      fraud.leaf,
      fraud.proof,
    ],
  });
  const args = marketEvent<{ slashed: bigint; refund: bigint }>(receipt, "LeaseFaulted");
  return { slashed: BigInt(args.slashed), refund: BigInt(args.refund) };
}

/** The phases as a table. */
export function phasesTable(c: Config, f: JobFacts): HTMLElement {
  return h(
    "table",
    { "aria-label": "Phases" },
    h("thead", {}, h("tr", {}, ...["time (UTC)", "block", "what"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      ...f.phases.map((p) =>
        h(
          "tr",
          {},
          h("td", {}, new Date(p.at * 1000).toISOString().replace(".000Z", "Z")),
          h("td", {}, p.block.toString()),
          h("td", { class: "what" }, describe(c, f, p)),
        ),
      ),
    ),
  );
}
