// scripts/cron-ticker.mjs: `npm run dev` fires the Worker's scheduled handler every minute, on timers the test owns.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CRON_INTERVAL_MS, startCronTicker, takeCronOptOut } from "../../scripts/cron-ticker.mjs";

/** setInterval/clearInterval that fire only when the test moves time on. */
function manualTimers() {
  const intervals = new Map();
  let nextId = 1;
  let now = 0;
  return {
    setInterval(fn, ms) {
      const id = nextId++;
      intervals.set(id, { fn, ms, due: now + ms });
      return { id, unref() {} };
    },
    clearInterval(handle) {
      intervals.delete(handle.id);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const next = [...intervals.values()].filter((t) => t.due <= until).sort((a, b) => a.due - b.due)[0];
        if (!next) break;
        now = next.due;
        next.due += next.ms;
        next.fn();
      }
      now = until;
    },
    get pending() {
      return intervals.size;
    },
  };
}

/** A fetch that records each URL and answers from `answers` in turn (a Response, or an Error to throw). */
function scriptedFetch(answers) {
  const calls = [];
  return {
    calls,
    fetch: async (url) => {
      calls.push(url);
      const answer = answers.length > 1 ? answers.shift() : answers[0];
      if (answer instanceof Error) throw answer;
      return answer();
    },
  };
}

const ok = () => new Response("Ran scheduled event");
const ROUTER = "http://127.0.0.1:8787";

describe("the local Cron ticker", () => {
  it("says once that it runs, then calls /__scheduled every minute and prints nothing while it works", async () => {
    const timers = manualTimers();
    const lines = [];
    const { calls, fetch } = scriptedFetch([ok]);
    const ticker = startCronTicker({ url: ROUTER, timers, fetch, log: (l) => lines.push(l) });
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^\[cron\] .* every minute through http:\/\/127\.0\.0\.1:8787\/__scheduled; --no-cron/);
    timers.advance(CRON_INTERVAL_MS - 1);
    assert.equal(calls.length, 0, "nothing before the first minute");
    for (let minute = 1; minute <= 3; minute++) {
      timers.advance(CRON_INTERVAL_MS);
      await ticker.settled();
    }
    assert.deepEqual(calls, Array(3).fill(`${ROUTER}/__scheduled?cron=*%2F5%20*%20*%20*%20*`));
    assert.equal(lines.length, 1, "no line for a tick that worked");
    ticker.stop();
    assert.equal(timers.pending, 0);
    timers.advance(5 * CRON_INTERVAL_MS);
    assert.equal(calls.length, 3, "nothing after stop()");
  });

  it("prints one line for a failing tick and tries again the next minute", async () => {
    const timers = manualTimers();
    const lines = [];
    const refused = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    const { calls, fetch } = scriptedFetch([
      refused,
      () => new Response("Error: the sweeper threw", { status: 500 }),
      ok,
    ]);
    const ticker = startCronTicker({ url: ROUTER, timers, fetch, log: (l) => lines.push(l) });
    timers.advance(CRON_INTERVAL_MS);
    await ticker.settled();
    assert.deepEqual(lines.slice(1), [
      `[cron] could not reach ${ROUTER}/__scheduled (ECONNREFUSED); next try in a minute`,
    ]);
    timers.advance(CRON_INTERVAL_MS);
    await ticker.settled();
    assert.equal(
      lines[2],
      "[cron] the scheduled handler failed (HTTP 500, the router's error is above); next try in a minute",
    );
    assert.doesNotMatch(lines[2], /sweeper threw/, "the error body is the router's to print, not repeated here");
    timers.advance(CRON_INTERVAL_MS);
    await ticker.settled();
    assert.equal(calls.length, 3);
    assert.equal(lines.length, 3, "the tick that worked printed nothing");
    ticker.stop();
  });

  it("does not start a tick while the last one is still running", async () => {
    const timers = manualTimers();
    let release;
    const calls = [];
    const fetch = (url) => {
      calls.push(url);
      return new Promise((resolve) => (release = () => resolve(ok())));
    };
    const ticker = startCronTicker({ url: ROUTER, timers, fetch, log: () => undefined });
    timers.advance(CRON_INTERVAL_MS);
    timers.advance(CRON_INTERVAL_MS);
    assert.equal(calls.length, 1);
    release();
    await ticker.settled();
    timers.advance(CRON_INTERVAL_MS);
    assert.equal(calls.length, 2);
    release();
    await ticker.settled();
    ticker.stop();
  });

  it("--no-cron turns it off and never reaches wrangler", () => {
    assert.deepEqual(takeCronOptOut(["--no-cron", "--var", "A:1"]), { cron: false, rest: ["--var", "A:1"] });
    assert.deepEqual(takeCronOptOut(["--persist-to", "dir"]), { cron: true, rest: ["--persist-to", "dir"] });
  });
});
