/**
 * The capacity watch. Every D1 result through a watched binding carries the database's size (`meta.size_after`)
 * and the rows it wrote; the isolate keeps the last size per shard in memory, and after the answer records it in
 * the control database at most once a minute per shard (`shard_capacity`), with the rows and events it counted
 * since. A rise past the warning or critical line alerts through the router's gate (throttled like every alert).
 * Past the read-only line the decision over every shard is src/core/capacity.ts's, and the watch carries it out:
 * when another writable shard has room, the shard is made read-only (`read_only_shards`, so the next ingest writes
 * a shard map without it), audited as the router's own action and alerted (`shard_read_only`); when none has, the
 * alert is `storage_full`. Ingest and the relay ask `refuseWhenFull` before they store anything. Nothing here ever slows or fails the
 * invocation it watches: the record runs in `waitUntil`, and a failure is logged with the shard id and an error code.
 *
 * The audit entry is written through storage (`insertAudit`, token id and `via` "router"): the control layer may
 * not import src/operations/, whose `recordAction` is for an operator's actions.
 */
import {
  CAPACITY_RECORD_INTERVAL_MS,
  type CapacityLevel,
  type CapacityRecord,
  type CapacitySample,
  type CapacityThresholds,
  decideCapacity,
  nextCapacityRecord,
  type ShardBinding,
  storageFullError,
} from "../core/capacity.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { AlertKind } from "../core/controls.ts";
import { RouterError } from "../core/errors.ts";
import {
  type D1ResultMeta,
  observeResults,
  readShardCapacity,
  readSize,
  writeShardCapacity,
} from "../storage/capacity.ts";
import { auditId, insertAudit, ROUTER_ACTOR } from "../storage/audit.ts";
import { markShardReadOnly, readOnlyShards } from "../storage/shard-maps.ts";
import { logEvent } from "../telemetry/log.ts";
import { withUsage } from "../telemetry/usage.ts";
import { raiseRouterAlert } from "./client.ts";

type WaitUntil = Pick<ExecutionContext, "waitUntil">;

/** A shard with its binding resolved (src/config/shards.ts). */
export type WatchedShard = ShardBinding & { db: D1Database };

interface Seen {
  sizeBytes: number | null;
  /** When D1 last reported the size. */
  seenAt: number | null;
  /** Since this isolate last recorded the shard. */
  rowsWritten: number;
  events: number;
  recordedAt: number | null;
}

/** One invocation's bindings, watched. */
export interface WatchedInvocation {
  env: Env;
  /** New events this invocation stored on a shard: the denominator of rows written per event. */
  stored(shardId: number, events: number): void;
  /** Records each shard this isolate saw, when its minute is up, after the answer. */
  settle(): void;
}

const percentOf = (sizeBytes: number, t: CapacityThresholds) => Math.round((sizeBytes / t.limitBytes) * 1000) / 10;

/** An error's code for the log (D1's `SQLITE_…` or `D1_…`, else its name): never its message, which may quote SQL. */
function errorCodeOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (
    /\bSQLITE_[A-Z_]+\b/.exec(message)?.[0] ??
    /\bD1_[A-Z_]+\b/.exec(message)?.[0] ??
    (err instanceof Error ? err.name : "unknown")
  );
}

/**
 * Each shard's state as the current shard map has it: read-only when the config says so or when it is not among the
 * map's writable shards (the capacity watch made it read-only).
 */
export function withMapStates<S extends ShardBinding>(shards: readonly S[], writable: readonly number[]): S[] {
  return shards.map((s) => ({
    ...s,
    state: s.state === "read_only" || !writable.includes(s.id) ? "read_only" : "writable",
  }));
}

/** One per Worker (per isolate): the sizes it has seen, and when it last recorded each shard and alerted a refusal. */
export class CapacityWatch {
  readonly #clock: Clock;
  readonly #seen = new Map<number, Seen>();
  #refusalAlertedAt: number | null = null;
  /** The refusals `refuseWhenFull` threw, already alerted: `writeFailed` tells them from D1's own. */
  readonly #refusals = new WeakSet<RouterError>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * The invocation's env with each shard's binding observed. `ctx` may be absent (a queue batch driven by a test):
   * the sizes are still seen, and recorded by a later invocation.
   */
  watch(
    env: Env,
    shards: readonly WatchedShard[],
    ctx: WaitUntil | undefined,
    config: RouterConfig,
  ): WatchedInvocation {
    const bindings = Object.fromEntries(
      shards.map((shard) => [shard.binding, observeResults(shard.db, (meta) => this.#observe(shard, meta))]),
    );
    return {
      env: { ...env, ...bindings } as Env,
      stored: (shardId, events) => {
        const shard = shards.find((s) => s.id === shardId);
        if (shard) this.#entry(shard).events += events;
      },
      settle: () => {
        if (ctx) this.#settle(env, shards, ctx, config);
      },
    };
  }

  /**
   * Whether no writable shard has room, by the sizes this isolate last saw (a shard not seen yet has room). When
   * every one looks full, a size older than a minute is asked of D1 again first: rows deleted since (retention, a
   * purge) make room, and a refusing isolate writes nothing that would tell it so.
   */
  async allFull(shards: readonly WatchedShard[], t: CapacityThresholds): Promise<boolean> {
    if (!decideCapacity(this.#sizes(shards), t).allFull) return false;
    const now = this.#clock.now();
    const stale = shards.filter((shard) => {
      const seenAt = this.#seen.get(shard.id)?.seenAt ?? null;
      return seenAt !== null && (now < seenAt || now - seenAt >= CAPACITY_RECORD_INTERVAL_MS);
    });
    if (stale.length === 0) return true;
    await Promise.all(
      stale.map(async (shard) => {
        try {
          this.#observe(shard, await readSize(shard.db));
        } catch (err) {
          // The last size stands: refusing on it is what it said a minute ago.
          logEvent("warn", "capacity_size_unread", { shardId: shard.id, errorCode: errorCodeOf(err) });
        }
      }),
    );
    return decideCapacity(this.#sizes(shards), t).allFull;
  }

  /**
   * Refuses a write that has nowhere to go, before anything is stored: when no writable shard has room (`allFull`),
   * the alert and a 503 `storage_full`.
   */
  async refuseWhenFull(env: Env, ctx: WaitUntil, config: RouterConfig, shards: readonly WatchedShard[]): Promise<void> {
    if (!(await this.allFull(shards, config.limits.capacity))) return;
    this.#refused(env, ctx, config, shards, "every shard past its read-only line");
    const refusal = storageFullError("every shard is past its read-only line");
    this.#refusals.add(refusal);
    throw refusal;
  }

  /** A write failed: D1 refusing it as full (`storage_full`) is alerted as the watch's own refusal was. */
  writeFailed(err: unknown, env: Env, ctx: WaitUntil, config: RouterConfig, shards: readonly ShardBinding[]): void {
    if (err instanceof RouterError && err.code === "storage_full" && !this.#refusals.has(err))
      this.#refused(env, ctx, config, shards, "D1 refused the write: the database is full");
  }

  /**
   * Ingest refused events because storage is full: a critical alert, at most one a minute from this isolate (the
   * gate's throttle then holds back repeats from every isolate).
   */
  #refused(env: Env, ctx: WaitUntil, config: RouterConfig, shards: readonly ShardBinding[], cause: string): void {
    const now = this.#clock.now();
    const last = this.#refusalAlertedAt;
    if (last !== null && now >= last && now - last < CAPACITY_RECORD_INTERVAL_MS) return;
    this.#refusalAlertedAt = now;
    const t = config.limits.capacity;
    const sizes = this.#sizes(shards)
      .map((s) => `shard ${s.id} ${s.sizeBytes === null ? "unknown" : `${percentOf(s.sizeBytes, t)}%`}`)
      .join(", ");
    ctx.waitUntil(
      raiseRouterAlert(env, config, now, "storage_full", {
        reason: `ingest answers 503 storage_full (${cause}): ${sizes}`.slice(0, 200),
        counts: { shards: shards.length },
        throttleKey: "storage_full",
      }),
    );
  }

  #entry(shard: ShardBinding): Seen {
    let seen = this.#seen.get(shard.id);
    if (!seen) {
      seen = { sizeBytes: null, seenAt: null, rowsWritten: 0, events: 0, recordedAt: null };
      this.#seen.set(shard.id, seen);
    }
    return seen;
  }

  #sizes(shards: readonly ShardBinding[]) {
    return shards.map((s) => ({ id: s.id, state: s.state, sizeBytes: this.#seen.get(s.id)?.sizeBytes ?? null }));
  }

  #observe(shard: ShardBinding, meta: D1ResultMeta | undefined): void {
    const seen = this.#entry(shard);
    const size = meta?.size_after;
    if (typeof size === "number" && size > 0) {
      seen.sizeBytes = size;
      seen.seenAt = this.#clock.now();
    }
    const rows = meta?.rows_written;
    if (typeof rows === "number" && rows > 0) seen.rowsWritten += rows;
  }

  #settle(env: Env, shards: readonly WatchedShard[], ctx: WaitUntil, config: RouterConfig): void {
    const now = this.#clock.now();
    for (const shard of shards) {
      const seen = this.#seen.get(shard.id);
      if (!seen || seen.sizeBytes === null) continue;
      const last = seen.recordedAt;
      if (last !== null && now >= last && now - last < CAPACITY_RECORD_INTERVAL_MS) continue;
      const sample: CapacitySample = {
        shardId: shard.id,
        binding: shard.binding,
        sizeBytes: seen.sizeBytes,
        measuredAt: now,
        rowsWritten: seen.rowsWritten,
        events: seen.events,
      };
      seen.recordedAt = now;
      seen.rowsWritten = 0;
      seen.events = 0;
      // Its own usage line: the record runs after the invocation's line is written, and the benchmark bills it.
      const usage = withUsage(env, "capacity");
      ctx.waitUntil(this.#record(usage.env, shards, config, sample).finally(() => usage.report({ shardId: shard.id })));
    }
  }

  /** Adds the sample to the shard's row (read, then a write that names the version read; once more if it lost). */
  async #record(env: Env, shards: readonly ShardBinding[], config: RouterConfig, sample: CapacitySample) {
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const [records, readOnly] = await Promise.all([readShardCapacity(env.DB), readOnlyShards(env.DB)]);
        const previous = records.find((r) => r.shardId === sample.shardId) ?? null;
        const { record, alert } = nextCapacityRecord(previous, sample, config.limits.capacity);
        if (!(await writeShardCapacity(env.DB, record, previous?.version ?? null))) continue;
        const recorded = [...records.filter((r) => r !== previous), record];
        const states = shards.map((s) => ({
          ...s,
          state: s.state === "read_only" || readOnly.some((r) => r.shard === s.id) ? "read_only" : "writable",
        })) satisfies ShardBinding[];
        // Past the read-only line, the decision is taken at every record, not only when the level rose: a shard
        // that stayed full while no other had room goes read-only once another has some.
        const configured = shards.filter((s) => s.state === "writable").map((s) => s.id);
        if (alert || record.level === "full")
          await this.#decide(env, config, states, configured, recorded, record, alert);
        return;
      }
      logEvent("warn", "capacity_record_skipped", {
        shardId: sample.shardId,
        note: "other isolates kept writing the shard's row; this sample's counts are dropped",
      });
    } catch (err) {
      logEvent("error", "capacity_record_failed", { shardId: sample.shardId, errorCode: errorCodeOf(err) });
    }
  }

  /**
   * A shard's record rose past a line, or is past the read-only line: its alert, and past the read-only line the
   * decision over every shard, carried out.
   */
  async #decide(
    env: Env,
    config: RouterConfig,
    shards: readonly ShardBinding[],
    configured: readonly number[],
    records: readonly CapacityRecord[],
    shard: CapacityRecord,
    risen: CapacityLevel | null,
  ): Promise<void> {
    const t = config.limits.capacity;
    const sizes = shards.map((s) => ({
      id: s.id,
      state: s.state,
      sizeBytes: records.find((r) => r.shardId === s.id)?.sizeBytes ?? null,
    }));
    const action = decideCapacity(sizes, t).shards.find((s) => s.id === shard.shardId)?.action ?? "none";
    const now = this.#clock.now();
    const percent = percentOf(shard.sizeBytes, t);
    const where = `shard ${shard.shardId} (${shard.binding}) at ${percent}% of ${t.limitBytes} bytes`;
    const counts = { shard: shard.shardId, sizeBytes: shard.sizeBytes, percent };
    if (action === "make_read_only") {
      await this.#makeReadOnly(env, config, shard, configured, now, where, counts);
      return;
    }
    if (!risen) return;
    const [kind, note]: [AlertKind, string] =
      risen === "warning"
        ? ["capacity_warning", `warning at ${t.warnPercent}%`]
        : risen === "critical"
          ? ["capacity_critical", `critical at ${t.criticalPercent}%`]
          : action === "all_full"
            ? ["storage_full", `no shard has room under ${t.readOnlyPercent}%: ingest answers 503`]
            : ["capacity_critical", `past ${t.readOnlyPercent}%, read-only`];
    await raiseRouterAlert(env, config, now, kind, {
      reason: `${where}; ${note}`,
      counts,
      throttleKey: kind === "storage_full" ? "storage_full" : `${kind}:shard-${shard.shardId}`,
    });
  }

  /**
   * Past the read-only line with room elsewhere: the shard takes no new events from the next shard map on (each
   * isolate's ingest reads the map at most a minute old; the rest of the shard up to D1's limit is kept for what
   * accepted events still write). Audited and alerted once, by the isolate whose insert made it read-only.
   */
  async #makeReadOnly(
    env: Env,
    config: RouterConfig,
    shard: CapacityRecord,
    configured: readonly number[],
    now: number,
    where: string,
    counts: Record<string, number>,
  ): Promise<void> {
    const t = config.limits.capacity;
    if (!(await markShardReadOnly(env.DB, shard.shardId, now, "capacity", configured))) return;
    logEvent("warn", "shard_made_read_only", { shardId: shard.shardId, percent: counts.percent });
    await insertAudit(env.DB, {
      id: auditId(now),
      at: now,
      action: "shard_read_only",
      tokenId: ROUTER_ACTOR,
      eventId: null,
      detail: {
        shard: shard.shardId,
        binding: shard.binding,
        sizeBytes: shard.sizeBytes,
        limitBytes: t.limitBytes,
        readOnlyPercent: t.readOnlyPercent,
        reason: "capacity",
        via: ROUTER_ACTOR,
        requestId: null,
      },
    }).catch((err: unknown) =>
      logEvent("error", "audit_failed", { shardId: shard.shardId, errorCode: errorCodeOf(err) }),
    );
    await raiseRouterAlert(env, config, now, "shard_read_only", {
      reason: `${where}; past ${t.readOnlyPercent}%: made read-only, new events go to the other shards`,
      counts,
      throttleKey: `shard_read_only:shard-${shard.shardId}`,
    });
  }
}
