// The Market page (see ../market.ts for what it reads).

import { app, beginRender, brief, putPage } from "../app";
import { type Config, learnTokens, rpcOrigin } from "../config";
import { h, notice } from "../dom";
import {
  clearedTable,
  clearingPrices,
  leaseLogs,
  openOrders,
  orderLogs,
  ordersTable,
  providers,
  providersTable,
} from "../market";

export async function showMarket(c: Config): Promise<void> {
  const seq = beginRender();
  try {
    // The market's logs are read once and shared by the three tables.
    const [created, started] = await Promise.all([orderLogs(app.client, c), leaseLogs(app.client, c)]);
    const [orders, provs] = await Promise.all([
      openOrders(app.client, c, created),
      providers(app.client, c, started),
    ]);
    await learnTokens(c, orders.map((o) => o.token));
    const cleared = clearingPrices(created, started);
    putPage(
      seq,
      h("h2", {}, "Market"),
      h("h3", {}, "Orders taking bids"),
      ordersTable(c, orders),
      h("h3", {}, "Clearing prices by GPU class"),
      clearedTable(c, cleared),
      h("h3", {}, "Providers"),
      providersTable(c, provs),
    );
  } catch (e) {
    putPage(
      seq,
      h("h2", {}, "Market"),
      notice("error", `Cannot read the market from ${rpcOrigin(c)}: ${brief(e)}. Is the node running?`),
    );
  }
}
