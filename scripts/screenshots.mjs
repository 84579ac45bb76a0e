#!/usr/bin/env node
// `npm run screenshots`: the dashboard's pages as PNGs in docs/screenshots/, for the README and for review. It
// starts the router and the mock receiver as the browser test does (test/browser/harness.mjs: an empty temporary
// database, the receiver failing the first erp delivery with a 400 so there is a dead letter to show), sends a few
// events, signs in with headless Chromium, runs the Cron's rollup walk until it has counted them (the harness runs
// it a second behind the clock; `-- --quick` skips the wait), and photographs each page at
// 1280 px, and the overview and an event at a phone's 390 px. Then a failing destination: erp refuses two orders, and
// the overview's health strip (also cropped on its own) and erp's dead letters are photographed at both widths. A page
// whose h1 is not the contract's is not photographed: the run says which and exits 1, and the PNGs it did take are
// written.
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, launchBrowser, newPage, sendEvent, signIn, startStack, waitFor } from "../test/browser/harness.mjs";

const PORT = 8796;
const OUT = path.join(ROOT, "docs", "screenshots");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const QUICK = process.argv.includes("--quick");

mkdirSync(OUT, { recursive: true });
const browser = await launchBrowser();
const stack = await startStack({
  port: PORT,
  receiverFlags: ["--fail-first", "1", "--fail-path", "/erp", "--fail-status", "400"],
});
const written = [];
const skipped = [];

async function shoot(page, name, expectedH1) {
  const h1 = await page
    .locator("h1")
    .first()
    .innerText({ timeout: 2_000 })
    .catch(() => null);
  if (h1 !== expectedH1) {
    skipped.push(`${name}: ${page.url()} shows h1 ${JSON.stringify(h1)}, not ${JSON.stringify(expectedH1)}`);
    return;
  }
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  written.push(path.relative(ROOT, file));
}

function must({ code, out }) {
  if (code !== 0) throw new Error(`npm run send failed:\n${out}`);
  return out;
}

try {
  // A create first: its erp delivery is the one the receiver fails, so the dead letter is the create's.
  const create = await sendEvent(stack.router, "weedmaps.create", "--merchant", "4242");
  must(create);
  await waitFor(
    () => stack.received().some((r) => r.headers["webhook-id"] === create.eventId && r.path.startsWith("/erp")),
    "the create's erp delivery",
  );
  for (const args of [
    ["leaftrade.order-v4"],
    ["leaftrade.product-issue"],
    ["weedmaps.draft", "--merchant", "4242"],
    ["weedmaps.create", "--merchant", "4242"],
    ["leaftrade.order-v3"],
  ]) {
    must(await sendEvent(stack.router, ...args));
  }
  // Every delivery answered: 2 for each create, 1 per order, 2 for the product issue, erp and pricing for the Draft.
  await waitFor(
    () => stack.received().filter((r) => !r.alert).length >= 10,
    "every delivery to reach the receiver",
    30_000,
  );

  const { page } = await newPage(browser, stack.router, DESKTOP);
  await page.goto("/dashboard/sign-in");
  await shoot(page, "sign-in", "Sign in");
  await signIn(page);

  // The overview's event counts come from the Cron's rollup walk (a second behind the clock here): run it
  // (GET /__scheduled) until it has counted all six events, so the picture shows them. --quick skips the wait.
  if (!QUICK) {
    await waitFor(
      async () => {
        await fetch(`${stack.router}/__scheduled`);
        await page.goto("/dashboard/overview");
        const cells = await page
          .locator(
            "xpath=//h2[normalize-space()='Events by source and type']/following-sibling::*[1][self::table]//tbody/tr/td[3]",
          )
          .allInnerTexts();
        return cells.reduce((sum, n) => sum + Number(n), 0) >= 6;
      },
      "the rollup walk to count the six events",
      30_000,
      1_000,
    );
  } else {
    await fetch(`${stack.router}/__scheduled`);
  }
  await page.goto("/dashboard/overview");
  await shoot(page, "overview", "Overview");
  await page.goto("/dashboard/events");
  await shoot(page, "events", "Events");
  await page.goto(`/dashboard/events/${create.eventId}`);
  await shoot(page, "event-detail", "weedmaps / create");
  await page.goto("/dashboard/dead-letters");
  await shoot(page, "dead-letters", "Dead letters");
  await page.goto("/dashboard/destinations");
  await shoot(page, "destinations", "Destinations");

  await page.goto("/dashboard/routing");
  const dryRun = page.getByRole("button", { name: "Dry run", exact: true });
  if (await dryRun.count()) {
    await page.getByRole("combobox", { name: "Source", exact: true }).selectOption("weedmaps");
    await page.getByLabel("Event type", { exact: true }).fill("create");
    await page.getByLabel("Merchant", { exact: true }).fill("4242");
    await page
      .getByRole("textbox", { name: "Payload", exact: true })
      .fill(readFileSync(path.join(ROOT, "test/fixtures/providers/weedmaps/create.json"), "utf8"));
    await dryRun.click();
    await page.waitForLoadState("load");
    if ((await page.getByRole("heading", { level: 2, name: "Dry run result", exact: true }).count()) === 0)
      skipped.push('routing: the dry run showed no "Dry run result"');
    else await shoot(page, "routing", "Routing");
  } else {
    skipped.push(`routing: ${page.url()} has no "Dry run" button`);
  }

  // The same session at a phone's width.
  await page.setViewportSize(PHONE);
  await page.goto("/dashboard/overview");
  await shoot(page, "overview-phone", "Overview");
  await page.goto(`/dashboard/events/${create.eventId}`);
  await shoot(page, "event-detail-phone", "weedmaps / create");

  // A failing destination, as the 3 a.m. look finds it: erp answers every delivery 400 for a while, two orders die
  // there, and the overview opens with its health strip in red; then erp's dead letters. The receiver is fixed after.
  await page.setViewportSize(DESKTOP);
  const erpHits = () => stack.received().filter((r) => r.path.startsWith("/erp")).length;
  const erpBefore = erpHits();
  await stack.restartReceiver(["--down-for", "10m", "--fail-path", "/erp", "--fail-status", "400"]);
  must(await sendEvent(stack.router, "leaftrade.order-v3", "--count", "2"));
  await waitFor(() => erpHits() >= erpBefore + 2, "the two failing erp deliveries", 20_000);
  const strip = page.locator('main section[aria-label="Health"]');
  await waitFor(
    async () => {
      await page.goto("/dashboard/overview");
      return /\b[3-9] dead letters\b/.test(await strip.innerText());
    },
    "the health strip to count erp's new dead letters",
    20_000,
    500,
  );
  await shoot(page, "overview-failing", "Overview");
  await strip.screenshot({ path: path.join(OUT, "health-strip.png") });
  written.push(path.join("docs", "screenshots", "health-strip.png"));
  await page.goto("/dashboard/dead-letters?destination=erp");
  await shoot(page, "dead-letters-failing", "Dead letters");
  await page.setViewportSize(PHONE);
  await page.goto("/dashboard/overview");
  await shoot(page, "overview-failing-phone", "Overview");
  await page.goto("/dashboard/dead-letters?destination=erp");
  await shoot(page, "dead-letters-phone", "Dead letters");
  await stack.restartReceiver([]);

  // The Draft page: the verdict, the responder and its latency, and what the POS changed, at both widths. A Draft's
  // answer is the order, not an event id, so its page is found through the events list.
  await page.setViewportSize(DESKTOP);
  await page.goto("/dashboard/events?type=draft");
  const draftHref = await page
    .locator('a[href^="/dashboard/events/evt_"]')
    .first()
    .getAttribute("href", { timeout: 2_000 })
    .catch(() => null);
  if (draftHref) {
    await page.goto(draftHref);
    await shoot(page, "draft", "weedmaps / draft");
    await page.setViewportSize(PHONE);
    await page.goto(draftHref);
    await shoot(page, "draft-phone", "weedmaps / draft");
  } else {
    skipped.push("draft: the events list shows no Draft to open");
  }
} finally {
  await browser.close().catch(() => undefined);
  await stack.stop();
}

for (const file of written) console.log(`wrote ${file}`);
for (const reason of skipped) console.error(`not taken: ${reason}`);
process.exit(skipped.length > 0 ? 1 : 0);
