// Log reads over block ranges an RPC may refuse: hosted RPCs cap a log query's range or result
// size (OFF-13). The whole range is asked first and halved where refused, as
// gridlease_chain::logs does for the daemons.

import { BaseError, type PublicClient, RpcRequestError } from "viem";

/** Whether `e` is the RPC's answer refusing the query (not a network failure: that is thrown). */
function refused(e: unknown): boolean {
  return e instanceof BaseError && e.walk((x) => x instanceof RpcRequestError) instanceof RpcRequestError;
}

/**
 * What `get` reads over the blocks `from` to `to` (the head when not given), in block order: the
 * whole range at once, each half again where the RPC refuses it, down to single blocks.
 */
export async function inRanges<T>(
  client: PublicClient,
  from: bigint,
  get: (fromBlock: bigint, toBlock: bigint) => Promise<T[]>,
  to?: bigint,
): Promise<T[]> {
  // Not viem's cached block number (up to a polling interval old): a log just mined must be in.
  const head = to ?? (await client.getBlockNumber({ cacheTime: 0 }));
  const out: T[] = [];
  const read = async (a: bigint, b: bigint): Promise<void> => {
    try {
      out.push(...(await get(a, b)));
    } catch (e) {
      if (a >= b || !refused(e)) throw e;
      const mid = a + (b - a) / 2n;
      await read(a, mid);
      await read(mid + 1n, b);
    }
  };
  if (from <= head) await read(from, head);
  return out;
}
