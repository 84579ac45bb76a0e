// The browser harness shared by the dashboard's browser test (test/browser/dashboard.test.mjs) and the screenshot
// script (scripts/screenshots.mjs): it starts the router (`npm run dev`, on an empty, temporary --persist-to) and
// the mock receiver (`npm run receiver`) in their own process groups, sends provider events with `npm run send`,
// finds Debian's Chromium and drives it headless through playwright-core, signs in, and reads what a page shows.
// Everything it starts is stopped again by scripts/procs.mjs, also when a run fails or is interrupted.
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { migratedState } from "../../scripts/migrate.mjs";
import { start, stop, stopAll, tail, waitFor } from "../../scripts/procs.mjs";

export { waitFor };

export const ROOT = path.resolve(import.meta.dirname, "../..");
/** .dev.vars.example: the admin token signs in, the reveal token shows customer data. */
export const ADMIN_TOKEN = "local-admin-token";
export const REVEAL_TOKEN = "local-reveal-token";
/** router.config.json sends pos, erp, pricing and the alerts to 127.0.0.1:8788, so the receiver must be there. */
export const RECEIVER_PORT = 8788;
const RECEIVER = `http://127.0.0.1:${RECEIVER_PORT}`;

/**
 * The Chromium to drive: $CHROMIUM_PATH, else `chromium` or `chromium-browser` on the PATH (Debian's package
 * installs /usr/bin/chromium). playwright-core downloads no browser of its own.
 */
export function findChromium() {
  const override = process.env.CHROMIUM_PATH;
  if (override) {
    try {
      accessSync(override, constants.X_OK);
      return override;
    } catch {
      throw new Error(`CHROMIUM_PATH=${override} is not an executable file`);
    }
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    for (const name of ["chromium", "chromium-browser"]) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  throw new Error(
    "no Chromium found: install Debian's (apt-get install -y chromium), or set CHROMIUM_PATH to a Chromium or Chrome binary",
  );
}

/**
 * Headless Chromium, without its sandbox (Playwright's default too): it cannot start as root, the CI installs
 * Chromium without the suid sandbox helper, and the only page it opens is this router on loopback. The background
 * networking flags keep it from calling Google's hosts, which this machine's closed network refuses.
 */
export function launchBrowser() {
  return chromium.launch({
    executablePath: findChromium(),
    headless: true,
    chromiumSandbox: false,
    args: [
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** A new browser context (its own cookie jar) with one page, on the router's origin. */
export async function newPage(browser, router, { width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({
    baseURL: router,
    viewport: { width, height },
    timezoneId: "UTC",
    locale: "en-US",
  });
  // A missing element fails in seconds with the page's text, not after Playwright's default 30 s.
  context.setDefaultTimeout(5_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  return { context, page };
}

async function assertPortFree(url, what) {
  const answered = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
    () => true,
    () => false,
  );
  if (answered) throw new Error(`${url} already answers: stop whatever is running there first (${what})`);
}

/**
 * Starts the mock receiver and `npm run dev -- --port <port> --persist-to <fresh temporary dir>`, and waits for
 * both. `received()` reads the receiver's --log (one JSON line per request it answered).
 */
export async function startStack({ port, receiverFlags = [] }) {
  const router = `http://127.0.0.1:${port}`;
  await assertPortFree(`${RECEIVER}/healthz`, "the receiver's port");
  await assertPortFree(`${router}/healthz`, "the router's port");
  const work = mkdtempSync(path.join(tmpdir(), "router-browser-"));
  const receiverLog = path.join(work, "receiver.jsonl");
  let receiver;
  const startReceiver = async (flags) => {
    receiver = start(
      "receiver",
      ["scripts/receiver.mjs", "--port", String(RECEIVER_PORT), "--log", receiverLog, "--quiet", ...flags],
      { cwd: ROOT },
    );
    await waitFor(async () => (await fetch(`${RECEIVER}/healthz`)).ok, "the receiver", 15_000).catch((err) => {
      throw new Error(`${err.message}\n${tail(receiver)}`);
    });
  };
  const stack = {
    router,
    work,
    received() {
      try {
        return readFileSync(receiverLog, "utf8")
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line));
      } catch {
        return [];
      }
    },
    /** A new receiver with new flags (its failure counters start again); the log file goes on. */
    async restartReceiver(flags = []) {
      await stop(receiver);
      await startReceiver(flags);
    },
    async stop() {
      await stopAll();
      rmSync(work, { recursive: true, force: true });
    },
  };
  try {
    await startReceiver(receiverFlags);
    await migratedState(path.join(work, "state"));
    // The rollup walk stays a second behind instead of two minutes (a local-only var), so the overview can count
    // what the test just sent.
    const dev = start(
      "dev",
      [
        "scripts/dev.mjs",
        "--port",
        String(port),
        "--persist-to",
        path.join(work, "state"),
        "--var",
        "ROLLUP_LAG_SECONDS:1",
      ],
      { cwd: ROOT },
    );
    await waitFor(async () => (await fetch(`${router}/healthz`)).ok, `the router on ${router}`, 120_000).catch(
      (err) => {
        throw new Error(`${err.message}\n${tail(dev)}`);
      },
    );
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

/**
 * `npm run send -- <event> --url <router> …` (that script is `node scripts/send.mjs`, run here with the same Node),
 * asynchronously, so the router's and receiver's output keeps being read meanwhile.
 */
export function sendEvent(router, event, ...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["scripts/send.mjs", event, "--url", router, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const eventIds = [...out.matchAll(/(?:accepted|stored once) as (evt_(?:\d{1,3}_)?[0-9a-f]{32})/g)].map(
        (m) => m[1],
      );
      resolve({ code, out, eventId: eventIds[0], eventIds });
    });
  });
}

/** Signs in through the form; the browser follows the 303 wherever it points. */
export async function signIn(page, token = ADMIN_TOKEN) {
  await page.goto("/dashboard/sign-in");
  await page.getByLabel("Admin token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForLoadState("load");
}

/** The router_session cookie of a context, or undefined. */
export async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === "router_session");
}

/** What a page shows, for failure messages: its address, its h1 and its text (bounded). */
export async function describePage(page, max = 4_000) {
  try {
    const text = (await page.locator("body").innerText({ timeout: 2_000 })).replace(/\n{3,}/g, "\n\n").trim();
    return `page ${page.url()}\n${text.length > max ? `${text.slice(0, max)}\n… (${text.length - max} more characters)` : text}`;
  } catch (err) {
    return `page ${page.url()} (its text could not be read: ${err.message.split("\n")[0]})`;
  }
}

/**
 * Runs `fn`; when it throws, throws again with what the page showed at that moment appended, so a failed
 * assertion reads as "expected X, and the page said Y".
 */
export async function onPage(page, fn) {
  try {
    return await fn();
  } catch (err) {
    const shown = await describePage(page);
    // The same error (an AssertionError keeps its actual/expected diff), its message extended.
    err.message = `${err.message}\n\n--- what the browser showed ---\n${shown}\n---`;
    if (typeof err.stack === "string")
      err.stack = `${err.message}\n${err.stack
        .split("\n")
        .filter((line) => line.trimStart().startsWith("at "))
        .join("\n")}`;
    throw err;
  }
}

/** Waits (briefly) until the locator is visible; fails with `what` instead of a Playwright timeout dump. */
export async function see(locator, what, timeout) {
  try {
    await locator.first().waitFor({ state: "visible", timeout });
  } catch {
    throw new Error(`expected to see ${what}`);
  }
  return locator.first();
}

/**
 * Reloads the page until `check()` gives a truthy value, at most `timeoutMs`; for what a background job (the
 * queue consumer) changes.
 */
export async function untilShown(page, check, what, timeoutMs = 20_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms reloading the page, waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    await page.reload();
  }
}

/** The table after the `h2` or `h3` with this text (wherever the page nests it). */
export function tableAfter(page, heading) {
  return page.locator(
    `xpath=//*[self::h2 or self::h3][normalize-space()=${JSON.stringify(heading)}]/following::table[1]`,
  );
}

/** A table as { columns, rows }: header texts and each body row's cell texts, trimmed. */
export async function readTable(table) {
  await table.first().waitFor({ state: "attached" });
  return table.first().evaluate((t) => ({
    columns: [...t.querySelectorAll("thead th")].map((th) => th.innerText.trim()),
    rows: [...t.querySelectorAll("tbody tr")].map((tr) => [...tr.cells].map((cell) => cell.innerText.trim())),
  }));
}

/** The rows of a table as objects keyed by its column names. */
export async function readRecords(table) {
  const { columns, rows } = await readTable(table);
  return rows.map((cells) => Object.fromEntries(columns.map((name, i) => [name, cells[i]])));
}

/** A time as the value of an <input type="datetime-local"> in UTC (the router reads it as UTC). */
export function datetimeLocal(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}
