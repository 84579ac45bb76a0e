// The Cron Trigger for `npm run dev`: `wrangler dev` never fires it, so the sweeper, the maintenance walk and the
// rollup walk behind the dashboard's overview would not run locally. This calls the Worker's scheduled handler
// through `/__scheduled` (served because dev passes `--test-scheduled`) once a minute. `--no-cron` turns it off.

export const CRON_INTERVAL_MS = 60_000;
/** wrangler.toml's schedule, passed as the controller's `cron`; the handler runs the same jobs whatever it says. */
export const CRON_SCHEDULE = "*/5 * * * *";
export const NO_CRON_FLAG = "--no-cron";

/** Takes `--no-cron` out of dev's arguments, so wrangler never sees it. */
export function takeCronOptOut(args) {
  return { cron: !args.includes(NO_CRON_FLAG), rest: args.filter((arg) => arg !== NO_CRON_FLAG) };
}

/**
 * Calls `<url>/__scheduled` every `intervalMs`. It prints one line when it starts and one for each tick that fails
 * (the next tick is the retry); a tick still running when the next is due is not doubled. The timer functions and
 * `fetch` are injected so a test can drive the minutes. Returns `stop()` and `settled()`, the tick in flight.
 */
export function startCronTicker({
  url,
  intervalMs = CRON_INTERVAL_MS,
  fetch = globalThis.fetch,
  timers = globalThis,
  log = (line) => console.log(line),
}) {
  const target = `${url}/__scheduled?cron=${encodeURIComponent(CRON_SCHEDULE)}`;
  const interval = intervalMs === 60_000 ? "a minute" : `${intervalMs / 1000} s`;
  let inFlight;

  async function tick() {
    try {
      const response = await fetch(target, { signal: AbortSignal.timeout(intervalMs) });
      // The body is wrangler's ("Ran scheduled event") or its error page: read to free the connection, not shown.
      await response.arrayBuffer();
      if (!response.ok)
        log(
          `[cron] the scheduled handler failed (HTTP ${response.status}, the router's error is above); next try in ${interval}`,
        );
    } catch (err) {
      const reason = err?.name === "TimeoutError" ? `no answer within ${interval}` : (err?.cause?.code ?? err?.message);
      log(`[cron] could not reach ${url}/__scheduled (${reason}); next try in ${interval}`);
    }
  }

  const handle = timers.setInterval(() => {
    if (inFlight) return;
    inFlight = tick().finally(() => {
      inFlight = undefined;
    });
  }, intervalMs);
  // The router's process keeps dev running; the ticker alone never should.
  handle?.unref?.();
  const every = intervalMs === 60_000 ? "minute" : interval;
  log(
    `[cron] running the scheduled handler (sweeper, maintenance, rollups) every ${every} through ${url}/__scheduled; ` +
      `${NO_CRON_FLAG} turns this off`,
  );
  return {
    stop: () => timers.clearInterval(handle),
    settled: () => inFlight ?? Promise.resolve(),
  };
}
