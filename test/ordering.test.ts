import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { latestDelivered, recordDelivered } from "../src/storage/ordering.ts";

// The tests of a file share its database: each counts only the rows it adds.
const rowCount = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM latest_deliveries").first<number>("n"))!;

it("keeps, per object, the newest delivered time of each destination in one row, and never moves one back", async () => {
  const before = await rowCount();
  expect(await latestDelivered(env.DB, "leaftrade", "ord_1")).toEqual(new Map());
  await recordDelivered(env.DB, "leaftrade", "ord_1", 2_000, ["erp", "pos-2"]);
  await recordDelivered(env.DB, "leaftrade", "ord_1", 1_000, ["erp"]);
  await recordDelivered(env.DB, "leaftrade", "ord_1", 3_000, ["pos-2", "crm"]);
  expect(await latestDelivered(env.DB, "leaftrade", "ord_1")).toEqual(
    new Map([
      ["erp", 2_000],
      ["pos-2", 3_000],
      ["crm", 3_000],
    ]),
  );
  expect(await latestDelivered(env.DB, "leaftrade", "ord_2")).toEqual(new Map());
  expect((await rowCount()) - before).toBe(1);
});

it("records more destinations than one statement may bind", async () => {
  const many = Array.from({ length: 120 }, (_, i) => `d${i}`);
  await recordDelivered(env.DB, "weedmaps", "9", 5, many);
  const latest = await latestDelivered(env.DB, "weedmaps", "9");
  expect([...latest.keys()].sort()).toEqual([...many].sort());
  expect(new Set(latest.values())).toEqual(new Set([5]));
});
