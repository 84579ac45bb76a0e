import { logEvent } from "./log.ts";

/**
 * Opt-in accounting of what one invocation costs, from the `meta` D1 returns with every result (what D1 bills)
 * and the queue messages sent. Enabled by `USAGE_LOG = "true"`; the benchmark reads these lines to compute the
 * cost per event. Off, it costs nothing: the bindings are used as they are.
 */
export interface Usage {
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  queueMessagesSent: number;
  /** Calls to the destinations' Durable Objects: each is one billed Durable Object request. */
  gateCalls: number;
}

type Meta = { rows_read?: number; rows_written?: number } | undefined;

function tally(usage: Usage, meta: Meta): void {
  usage.d1Queries += 1;
  usage.d1RowsRead += meta?.rows_read ?? 0;
  usage.d1RowsWritten += meta?.rows_written ?? 0;
}

// D1's batch() only takes the runtime's own statement objects, so every proxy remembers the one it wraps.
const rawStatements = new WeakMap<object, D1PreparedStatement>();

function trackStatement(statement: D1PreparedStatement, usage: Usage): D1PreparedStatement {
  const tracked = new Proxy(statement, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "bind") return (...args: unknown[]) => trackStatement(target.bind(...args), usage);
      if (property === "all" || property === "run") {
        return async () => {
          const result = await (target[property] as () => Promise<D1Result>).call(target);
          tally(usage, result.meta as Meta);
          return result;
        };
      }
      if (property === "first") {
        // first() hides meta; run through all() to count it, and pick the row or column as first() would.
        return async (column?: string) => {
          const result = await target.all();
          tally(usage, result.meta as Meta);
          const row = result.results[0] as Record<string, unknown> | undefined;
          return row === undefined ? null : column === undefined ? row : row[column];
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  rawStatements.set(tracked, statement);
  return tracked;
}

function trackDatabase(db: D1Database, usage: Usage): D1Database {
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property === "prepare") return (query: string) => trackStatement(target.prepare(query), usage);
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements.map((s) => rawStatements.get(s) ?? s));
          for (const result of results) tally(usage, result.meta as Meta);
          return results;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function trackQueue(queue: Queue, usage: Usage): Queue {
  return new Proxy(queue, {
    get(target, property, receiver) {
      if (property === "send") {
        return async (...args: Parameters<Queue["send"]>) => {
          await target.send(...args);
          usage.queueMessagesSent += 1;
        };
      }
      if (property === "sendBatch") {
        return async (...args: Parameters<Queue["sendBatch"]>) => {
          await target.sendBatch(...args);
          usage.queueMessagesSent += [...args[0]].length;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Counts every method called on a stub of the namespace (an RPC call: one Durable Object request). */
function trackGates<T extends object>(namespace: T, usage: Usage): T {
  const stub = (target: object) =>
    new Proxy(target, {
      get(inner, property) {
        const value = Reflect.get(inner, property);
        if (typeof value !== "function") return value;
        // An RPC stub's methods are remote: called as they are (even `.apply` would be a remote method).
        return (...args: unknown[]) => {
          usage.gateCalls += 1;
          return (value as (...a: unknown[]) => unknown)(...args);
        };
      },
    });
  return new Proxy(namespace, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "get" || property === "getByName")
        return (...args: unknown[]) => stub((value as (...a: unknown[]) => object).apply(target, args));
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * What one Durable Object call read and wrote in the object's SQLite storage (billed like D1 rows), from the cursors
 * of the statements it ran. `track` wraps the object's `sql`; `report` logs and resets, when USAGE_LOG is on.
 */
export function gateUsage(env: Env): {
  track: (sql: SqlStorage) => SqlStorage;
  report: (method: string, extra?: Record<string, unknown>) => void;
} {
  const on = (env as unknown as Record<string, unknown>).USAGE_LOG === "true";
  let cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  return {
    track: (sql) =>
      on
        ? new Proxy(sql, {
            get(target, property) {
              const value = Reflect.get(target, property);
              if (property !== "exec") return typeof value === "function" ? value.bind(target) : value;
              return (...args: Parameters<SqlStorage["exec"]>) => {
                const cursor = target.exec(...args);
                cursors.push(cursor);
                return cursor;
              };
            },
          })
        : sql,
    report: (method, extra = {}) => {
      if (!on) return;
      const rows = cursors.reduce((sum, c) => ({ read: sum.read + c.rowsRead, written: sum.written + c.rowsWritten }), {
        read: 0,
        written: 0,
      });
      cursors = [];
      logEvent("info", "usage", {
        handler: "gate",
        method,
        gateRowsRead: rows.read,
        gateRowsWritten: rows.written,
        ...extra,
      });
    },
  };
}

const isDatabase = (value: unknown): boolean =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as D1Database).prepare === "function" &&
  typeof (value as D1Database).batch === "function";

/** Returns the env to use for one invocation, and a function that logs what it used. */
export function withUsage(env: Env, handler: string): { env: Env; report: (extra?: Record<string, unknown>) => void } {
  if ((env as unknown as Record<string, unknown>).USAGE_LOG !== "true") return { env, report: () => undefined };
  const usage: Usage = { d1Queries: 0, d1RowsRead: 0, d1RowsWritten: 0, queueMessagesSent: 0, gateCalls: 0 };
  // Every D1 binding: the control database and each event shard (storage.shards) bill rows alike.
  const databases = Object.fromEntries(
    Object.entries(env as unknown as Record<string, unknown>)
      .filter(([, value]) => isDatabase(value))
      .map(([name, value]) => [name, trackDatabase(value as D1Database, usage)]),
  );
  const tracked = {
    ...env,
    ...databases,
    DELIVERY_QUEUE: trackQueue(env.DELIVERY_QUEUE, usage),
    DEAD_LETTER_QUEUE: trackQueue(env.DEAD_LETTER_QUEUE, usage),
    DESTINATION_GATE: trackGates(env.DESTINATION_GATE, usage),
  } as Env;
  return { env: tracked, report: (extra = {}) => logEvent("info", "usage", { handler, ...usage, ...extra }) };
}
