//! Log collection the daemons share: read a contract's logs from a saved cursor up to a block, in
//! pages that halve when the RPC refuses a range (OFF-13), and rewind when the cursor's block was
//! reorged away (OFF-01). The caller persists its cursor once per page, together with whatever it
//! derived from that page, so a crash re-reads at most one page and every handler must be
//! idempotent.

use alloy::{
    eips::BlockNumberOrTag,
    primitives::B256,
    providers::Provider,
    rpc::types::{Filter, Log},
};
use tracing::{debug, warn};

use crate::{ChainError, Client, classify_rpc};

/// Pages of `eth_getLogs` start this many blocks wide and halve on refusal.
pub const LOG_PAGE: u64 = 2_000;
/// How far a cursor rewinds when its block is no longer canonical.
pub const REORG_REWIND: u64 = 64;

/// A cursor: the last block read and its hash.
pub type Cursor = (u64, B256);

/// Hash of block `n`, if the node has it.
pub async fn block_hash(c: &Client, n: u64) -> Result<Option<B256>, ChainError> {
    Ok(c.provider
        .get_block_by_number(BlockNumberOrTag::Number(n))
        .await
        .map_err(classify_rpc)?
        .map(|b| b.header.hash))
}

/// The first block to read after `cursor` (named `name` in logs): the next one, or
/// [`REORG_REWIND`] blocks back when the cursor's block was reorged away; `floor` (the deploy
/// block, never `latest`: OFF-15) when there is no cursor.
pub async fn resume_from(
    c: &Client,
    name: &str,
    cursor: Option<Cursor>,
    floor: u64,
) -> Result<u64, ChainError> {
    let Some((b, h)) = cursor else {
        return Ok(floor);
    };
    match block_hash(c, b).await? {
        Some(now) if now == h => return Ok(b + 1),
        Some(_) => {}
        None => {
            // The node has no block `b`: it is behind the cursor (a lagging or fallback RPC), or
            // the chain rolled back. Either way wait until it is past `b` again; its hash there
            // then tells a reorg (rewind) from a node that had only been behind (go on).
            let head = c.head().await?;
            return Err(ChainError::Network(format!(
                "the RPC's head {head} is below cursor {name} at block {b}: waiting for it to pass the cursor (if the chain was reset, e.g. a fresh devnet, move the daemon's state database away)"
            )));
        }
    }
    let back = b.saturating_sub(REORG_REWIND).max(floor);
    warn!(
        cursor = name,
        block = b,
        rewind_to = back,
        "reorg below the cursor: re-reading"
    );
    Ok(back)
}

/// Read the logs of `filter` (addresses and topics; its block range is ignored) from `from` to
/// `to` inclusive, calling `on_page(logs, last_block, last_block_hash)` after each page. Logs
/// marked `removed` are dropped. Returns the number of logs seen.
pub async fn pages<F>(
    c: &Client,
    filter: &Filter,
    from: u64,
    to: u64,
    mut on_page: F,
) -> Result<usize, ChainError>
where
    F: AsyncFnMut(Vec<Log>, u64, B256) -> Result<(), ChainError>,
{
    let mut seen = 0;
    let mut pager = Pager::new(filter, from, to);
    pager.hashed = true;
    while let Some((logs, end, hash)) = pager.next_hashed(c).await? {
        seen += logs.len();
        on_page(logs, end, hash).await?;
    }
    Ok(seen)
}

/// The first log of `filter` in blocks `from..=to`, read in pages that halve when the RPC
/// refuses a range, like [`pages`] (for one-off look-ups, e.g. one order's creation).
pub async fn first(
    c: &Client,
    filter: &Filter,
    from: u64,
    to: u64,
) -> Result<Option<Log>, ChainError> {
    let mut pager = Pager::new(filter, from, to);
    while let Some((logs, _)) = pager.next(c).await? {
        if let Some(l) = logs.into_iter().next() {
            return Ok(Some(l));
        }
    }
    Ok(None)
}

/// Every log of `filter` in blocks `from..=to`, oldest first, read in pages that halve when the
/// RPC refuses a range, like [`pages`] (for one-off reads on public RPCs, which cap the range of
/// one `eth_getLogs`: a tenant's orders, one lease's history).
pub async fn all(c: &Client, filter: &Filter, from: u64, to: u64) -> Result<Vec<Log>, ChainError> {
    let mut out = Vec::new();
    let mut pager = Pager::new(filter, from, to);
    while let Some((logs, _)) = pager.next(c).await? {
        out.extend(logs);
    }
    Ok(out)
}

/// Blocks `from..=to` in pages of at most [`LOG_PAGE`] blocks that halve while the RPC refuses a
/// range and grow back after (OFF-13).
struct Pager<'a> {
    filter: &'a Filter,
    from: u64,
    to: u64,
    span: u64,
    /// Whether each page comes with the hash of its last block, read before and after its logs.
    hashed: bool,
}

impl<'a> Pager<'a> {
    fn new(filter: &'a Filter, from: u64, to: u64) -> Self {
        Self {
            filter,
            from,
            to,
            span: LOG_PAGE,
            hashed: false,
        }
    }

    /// The next page's logs (`removed` ones dropped) and its last block; `None` past `to`.
    async fn next(&mut self, c: &Client) -> Result<Option<(Vec<Log>, u64)>, ChainError> {
        Ok(self.next_hashed(c).await?.map(|(logs, end, _)| (logs, end)))
    }

    /// [`Self::next`] with the hash of the page's last block when `hashed` (else zero). It is
    /// read before the logs and again after: a block's hash names all the blocks before it, so
    /// when both agree the logs are of that chain. Else a reorg came between the reads, and the
    /// page is read again: before, the logs of the old chain could be kept under the new chain's
    /// hash, and the new chain's never read.
    async fn next_hashed(
        &mut self,
        c: &Client,
    ) -> Result<Option<(Vec<Log>, u64, B256)>, ChainError> {
        let hash = async |end: u64| {
            block_hash(c, end)
                .await?
                .ok_or_else(|| ChainError::Network(format!("block {end} vanished")))
        };
        while self.from <= self.to {
            let (from, end) = (self.from, self.to.min(self.from + self.span - 1));
            let before = if self.hashed {
                hash(end).await?
            } else {
                B256::ZERO
            };
            let f = self.filter.clone().from_block(from).to_block(end);
            match c.provider.get_logs(&f).await {
                Ok(logs) => {
                    if self.hashed && hash(end).await? != before {
                        warn!(
                            from,
                            end, "a reorg while the page was read: reading it again"
                        );
                        continue;
                    }
                    self.from = end + 1;
                    self.span = (self.span * 2).min(LOG_PAGE);
                    return Ok(Some((
                        logs.into_iter().filter(|l| !l.removed).collect(),
                        end,
                        before,
                    )));
                }
                Err(e) if self.span > 1 => {
                    debug!(from, end, error = %e, "log range refused: halving");
                    self.span /= 2;
                }
                Err(e) => return Err(classify_rpc(e)),
            }
        }
        Ok(None)
    }
}
