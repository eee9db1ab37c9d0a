// One EIP-2612 permit signed in the user's wallet: the token's domain reproduced from its
// DOMAIN_SEPARATOR (version "1" or "2", as gridlease_chain::token does), the balance and gas
// checked first, and what is signed shown before the wallet opens (WEB-01: the same object). A
// token without a permit is approved instead (`pay`, with jobs.ts's approveFor).

import {
  type Address,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  createWalletClient,
  custom,
  domainSeparator,
  formatUnits,
  parseAbi,
} from "viem";
import type { Config, Token } from "./config";
import { type Call, afterApproval, approveFor, chainOf, simulateAndSend } from "./jobs";
import type { Eip1193 } from "./wallet";

const tokenAbi = parseAbi([
  "function name() view returns (string)",
  "function DOMAIN_SEPARATOR() view returns (bytes32)",
  "function nonces(address) view returns (uint256)",
  "function balanceOf(address) view returns (uint256)",
]);

/** What the user is asked to sign, shown before the wallet opens (WEB-01). */
export interface PermitShown {
  token: Token;
  spender: Address;
  value: bigint;
}

/** A signed permit, as the contracts take it. */
export interface SignedPermit {
  deadline: bigint;
  v: number;
  r: Hex;
  s: Hex;
}

/** A token's EIP-712 permit domain. */
export interface PermitDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

/**
 * The permit domain of `token`: its `name()` with version "1" (OpenZeppelin) or "2" (Circle's
 * USDC), whichever reproduces its `DOMAIN_SEPARATOR()`, as gridlease_chain::token finds it. A
 * token without one (USDT and its like) gets why, as a string: it is approved instead.
 */
export async function permitDomain(client: PublicClient, c: Config, token: Token): Promise<PermitDomain | string> {
  const [name, separator] = await Promise.all([
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "name" }),
    client
      .readContract({ address: token.address, abi: tokenAbi, functionName: "DOMAIN_SEPARATOR" })
      .catch((e) => {
        // The token has no such function (it reverts, or answers nothing); an RPC failure is not
        // an answer, and is the caller's.
        const none = (x: unknown) => x instanceof ContractFunctionRevertedError || x instanceof ContractFunctionZeroDataError;
        if (e instanceof BaseError && e.walk(none)) return undefined;
        throw e;
      }),
  ]);
  if (separator === undefined) return `${token.symbol} does not support EIP-2612 permits (no DOMAIN_SEPARATOR)`;
  const domain = ["1", "2"]
    .map((version) => ({ name, version, chainId: c.chainId, verifyingContract: token.address }))
    .find((d) => domainSeparator({ domain: d }) === separator);
  return domain ?? `cannot reproduce the permit domain of ${token.symbol} (${token.address}, "${name}")`;
}

/**
 * Refuse, before anything is signed, a payment of `value` of `token` from `account` that its
 * balance cannot cover (`short` words it, given the balance) or whose gas it cannot pay.
 */
async function checkFunds(
  client: PublicClient,
  account: Address,
  token: Token,
  value: bigint,
  short: (balance: string) => string,
): Promise<void> {
  const [balance, ether] = await Promise.all([
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "balanceOf", args: [account] }),
    client.getBalance({ address: account }),
  ]);
  if (balance < value) throw new Error(short(`${formatUnits(balance, token.decimals)} ${token.symbol}`));
  if (ether === 0n) throw new Error(`wallet ${account} has no ether to pay gas`);
}

/**
 * Sign a permit of `value` of `token` (whose permit domain is `domain`: see [permitDomain]) for
 * `spender` from `account`, valid for an hour of chain time; the funds are checked before
 * ([checkFunds]). `show` is told what is signed before the wallet opens.
 */
async function signPermit(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  token: Token,
  domain: PermitDomain,
  spender: Address,
  value: bigint,
  show: (p: PermitShown, step: string) => void,
): Promise<SignedPermit> {
  const [nonce, head] = await Promise.all([
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "nonces", args: [account] }),
    client.getBlock({ blockTag: "latest" }),
  ]);
  const deadline = head.timestamp + 3600n;
  const permit = { owner: account, spender, value, nonce, deadline };
  show({ token, spender: permit.spender, value: permit.value }, "Sign the permit in your wallet...");
  const walletClient = createWalletClient({ account, chain: chainOf(c), transport: custom(wallet) });
  const signature = await walletClient.signTypedData({
    account,
    domain,
    types: {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "Permit",
    message: permit,
  });
  let v = Number.parseInt(signature.slice(130, 132), 16);
  if (v < 27) v += 27;
  return { deadline, v, r: `0x${signature.slice(2, 66)}` as Hex, s: `0x${signature.slice(66, 130)}` as Hex };
}

/**
 * Pay `value` of `token` from `account` to `spender` with the call that pulls it, and send that
 * call: the funds checked first (`short` words a balance below `value`); then one permit signature
 * for exactly `value` and `permitted(permit)`'s call, or, for a token without a permit, an approval
 * of exactly `value` and the `approved` call. `show` is told each step before the wallet opens
 * (WEB-01: what is signed or approved is what it shows). The call's receipt.
 */
export async function pay(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  token: Token,
  spender: { address: Address; name: string },
  value: bigint,
  calls: { approved: Call; permitted: (p: SignedPermit) => Call },
  short: (balance: string) => string,
  show: (p: PermitShown, step: string) => void,
): Promise<TransactionReceipt> {
  await checkFunds(client, account, token, value, short);
  const shown = { token, spender: spender.address, value };
  const domain = await permitDomain(client, c, token);
  let call = calls.approved;
  let approvals = 0;
  if (typeof domain === "string") {
    approvals = await approveFor(client, c, wallet, account, token.address, spender, value, call, (what) =>
      show(shown, what),
    );
  } else {
    call = calls.permitted(await signPermit(client, c, wallet, account, token, domain, spender.address, value, show));
  }
  show(shown, "Confirm the transaction in your wallet...");
  const what = `${formatUnits(value, token.decimals)} ${token.symbol}`;
  return afterApproval(approvals, what, () => simulateAndSend(client, c, wallet, account, call));
}
