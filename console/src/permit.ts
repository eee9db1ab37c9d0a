// One EIP-2612 permit signed in the user's wallet: the token's domain reproduced from its
// DOMAIN_SEPARATOR (version "1" or "2", as gridlease_chain::token does), the balance and gas
// checked first, and what is signed shown before the wallet opens (WEB-01: the same object).

import {
  type Address,
  type Hex,
  type PublicClient,
  createWalletClient,
  custom,
  domainSeparator,
  formatUnits,
  parseAbi,
} from "viem";
import type { Config, Token } from "./config";
import { chainOf } from "./jobs";
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

/**
 * Sign a permit of `value` of `token` for `spender` from `account`, valid for an hour of chain
 * time. `short` words the refusal when the wallet holds less than `value`.
 */
export async function signPermit(
  client: PublicClient,
  c: Config,
  wallet: Eip1193,
  account: Address,
  token: Token,
  spender: Address,
  value: bigint,
  short: (balance: string) => string,
  show: (p: PermitShown, step: string) => void,
): Promise<SignedPermit> {
  const [balance, ether, name, separator, nonce, head] = await Promise.all([
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "balanceOf", args: [account] }),
    client.getBalance({ address: account }),
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "name" }),
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "DOMAIN_SEPARATOR" }).catch(() => {
      throw new Error(`${token.symbol} does not support EIP-2612 permits (no DOMAIN_SEPARATOR)`);
    }),
    client.readContract({ address: token.address, abi: tokenAbi, functionName: "nonces", args: [account] }),
    client.getBlock({ blockTag: "latest" }),
  ]);
  if (balance < value) throw new Error(short(`${formatUnits(balance, token.decimals)} ${token.symbol}`));
  if (ether === 0n) throw new Error(`wallet ${account} has no ether to pay gas`);
  const domain = ["1", "2"]
    .map((version) => ({ name, version, chainId: c.chainId, verifyingContract: token.address }))
    .find((d) => domainSeparator({ domain: d }) === separator);
  if (!domain) {
    throw new Error(`cannot reproduce the permit domain of token ${token.address} ("${name}"); approve it instead`);
  }
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
