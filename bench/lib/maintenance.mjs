// The maintenance walk's D1 cost (src/maintenance/walk.ts), measured on the full router's database after scenario 6:
// one run with nothing to do, one that re-wraps every data key under a new primary, one that purges payloads past
// the payload horizon and one that deletes rows past the event horizon. Rows are aged by rewriting `received_at` in
// the local D1 file while the router is stopped, so the walk runs on the system clock as deployed.
import { readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BUSY_MS } from "./storage.mjs";
import { stop, waitFor } from "../../scripts/procs.mjs";
import { eventCount, localDatabase } from "./dashboard.mjs";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Moves `received_at` of the first `count` events (in key order) back by `days`. */
function age(persistTo, count, days) {
  const db = new DatabaseSync(localDatabase(persistTo), { timeout: BUSY_MS });
  try {
    db.prepare(
      `UPDATE events SET received_at = received_at - ?1 WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?2)`,
    ).run(days * DAY_MS, count);
  } finally {
    db.close();
  }
}

/** The repo's example secrets with a new primary key in front of the example ring: a rotation. */
function rotatedEnvFile(root, workDir) {
  const text = readFileSync(path.join(root, ".dev.vars.example"), "utf8");
  const current = /^PAYLOAD_KEYS=(.*)$/m.exec(text)?.[1];
  if (!current) throw new Error(".dev.vars.example has no PAYLOAD_KEYS");
  const file = path.join(workDir, "rotated.dev.vars");
  writeFileSync(
    file,
    text.replace(/^PAYLOAD_KEYS=.*$/m, `PAYLOAD_KEYS=bench-b:${randomBytes(32).toString("base64")},${current}`),
  );
  return file;
}

/** The usage line of one Cron job (handler "maintenance" or "rollup") printed since line `from`. */
const usageLine = (router, from, handler) =>
  waitFor(
    () =>
      router.child.lines
        .slice(from)
        .filter((l) => l.startsWith("{") && l.includes(`"handler":"${handler}"`))
        .map((l) => JSON.parse(l))[0],
    `the ${handler} usage line`,
    30_000,
  );

/** Runs the Cron once and returns the walk's usage line (handler "maintenance": D1 use and the walk's report). */
async function walkOnce(router, rollups = null) {
  const from = router.child.lines.length;
  await fetch(`${router.url}/cdn-cgi/local/scheduled`, { signal: AbortSignal.timeout(30_000) });
  // The same invocation's rollup walk (src/maintenance/rollup.ts), for the overview's cost per event.
  if (rollups) {
    const line = await usageLine(router, from, "rollup");
    rollups.push({
      d1Queries: line.d1Queries,
      rowsRead: line.d1RowsRead,
      rowsWritten: line.d1RowsWritten,
      counted: line.counted,
      slices: line.slices,
    });
  }
  return usageLine(router, from, "maintenance");
}

const pick = (line) => ({
  d1Queries: line.d1Queries,
  rowsRead: line.d1RowsRead,
  rowsWritten: line.d1RowsWritten,
  walked: line.walked,
  rewrapped: line.rewrapped,
  purged: line.purged,
  deleted: line.deleted,
  encrypted: line.encrypted,
});

/**
 * `start(envFile)` starts the router on `persistTo` (no queue consumer, USAGE_LOG on) and returns { child, url }.
 * Returns the four runs and, for each action, the rows it adds per event over the run with nothing to do.
 */
export async function measureMaintenance({ root, workDir, persistTo, start, sliceRows, payloadDays, eventDays }) {
  const events = eventCount(persistTo);
  if (events > sliceRows)
    throw new Error(`${events} events stored, more than one slice (${sliceRows}): the runs below would mix laps`);
  const rotated = rotatedEnvFile(root, workDir);
  const runs = {};
  const rollups = [];
  let router = await start(rotated);
  try {
    // The first run with the new ring re-wraps every data key; the second finds nothing to do.
    runs.rewrap = pick(await walkOnce(router, rollups));
    runs.idle = pick(await walkOnce(router, rollups));
    await stop(router.child);
    const purgeCount = Math.floor(events / 2);
    age(persistTo, purgeCount, payloadDays + 1);
    router = await start(rotated);
    runs.purge = pick(await walkOnce(router));
    await stop(router.child);
    const deleteCount = Math.floor(events / 4);
    age(persistTo, deleteCount, eventDays + 1 - (payloadDays + 1));
    router = await start(rotated);
    runs.delete = pick(await walkOnce(router));
  } finally {
    await stop(router.child);
  }
  const perEvent = (run, count) =>
    count > 0
      ? {
          rowsWritten: (run.rowsWritten - runs.idle.rowsWritten) / count,
          rowsRead: (run.rowsRead - runs.idle.rowsRead) / count,
          d1Queries: (run.d1Queries - runs.idle.d1Queries) / count,
        }
      : null;
  const [first, next] = rollups;
  return {
    events,
    // The rollup walk's first run counts the events scenario 6 left (all older than its two-minute lag by then);
    // the next has nothing new: what every run costs however quiet.
    rollup:
      first && next
        ? {
            first,
            next,
            perEvent:
              first.counted > 0
                ? {
                    rowsRead: (first.rowsRead - next.rowsRead) / first.counted,
                    rowsWritten: (first.rowsWritten - next.rowsWritten) / first.counted,
                  }
                : null,
          }
        : null,
    sliceRows,
    payloadDays,
    eventDays,
    runs,
    perEvent: {
      rewrap: perEvent(runs.rewrap, runs.rewrap.rewrapped),
      purge: perEvent(runs.purge, runs.purge.purged),
      delete: perEvent(runs.delete, runs.delete.deleted),
    },
  };
}
