/**
 * The soak's Worker: the production Worker (createWorker, unchanged) with faults injected by wrapping its bindings,
 * the way the usage accounting wraps them. Lives outside src/, so nothing of it reaches the deployed bundle
 * (wrangler.toml's main is src/index.ts; soak/soak.test.mjs checks the built bundle has no trace of it).
 *
 * A seeded fraction of D1 statements fail at ingest and in the consumer, and of queue sends everywhere.
 */
import { createWorker } from "../src/app/worker.ts";
export { DestinationGate } from "../src/control/gate.ts";

const worker = createWorker();

let seed = 1;
let seeded = false;
function random(env: Env): number {
  if (!seeded) {
    seed = Number((env as unknown as Record<string, string>).SOAK_SEED ?? 1) || 1;
    seeded = true;
  }
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
}

// batch() takes only the runtime's own statement objects, so every proxy hands back the one it wraps.
const UNWRAP = Symbol("unwrap");
const unwrap = (statement: D1PreparedStatement): D1PreparedStatement =>
  (statement as unknown as { [UNWRAP]?: D1PreparedStatement })[UNWRAP] ?? statement;

const rate = (env: Env, name: string) => Number((env as unknown as Record<string, string>)[name] ?? 0);

function faultyDatabase(db: D1Database, env: Env, failRate: number): D1Database {
  const fail = () => random(env) < failRate;
  const wrapStatement = (statement: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(statement, {
      get(target, property, receiver) {
        if (property === UNWRAP) return target;
        if (property === "bind") return (...args: unknown[]) => wrapStatement(target.bind(...args));
        if (property === "run" || property === "all" || property === "first") {
          return (...args: unknown[]) =>
            fail()
              ? Promise.reject(new Error("D1_ERROR: soak fault"))
              : (target[property] as (...a: unknown[]) => unknown).apply(target, args);
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property === "prepare") return (query: string) => wrapStatement(target.prepare(query));
      if (property === "batch") {
        return (statements: D1PreparedStatement[]) =>
          fail() ? Promise.reject(new Error("D1_ERROR: soak fault")) : target.batch(statements.map((s) => unwrap(s)));
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function faultyQueue(queue: Queue, env: Env, failRate: number): Queue {
  return new Proxy(queue, {
    get(target, property, receiver) {
      if (property === "send" || property === "sendBatch") {
        return (...args: unknown[]) =>
          random(env) < failRate
            ? Promise.reject(new Error("soak fault: queue send failed"))
            : (target[property] as (...a: unknown[]) => unknown).apply(target, args);
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Every D1 binding of the Worker (the control database and each event shard) gets the same faults. */
function faultyDatabases(env: Env, dbRate: number): Record<string, D1Database> {
  return Object.fromEntries(
    Object.entries(env as unknown as Record<string, unknown>)
      .filter(([, value]) => typeof (value as D1Database | null)?.prepare === "function")
      .map(([name, value]) => [name, faultyDatabase(value as D1Database, env, dbRate)]),
  );
}

function faulty(env: Env, dbRate: number): Env {
  return {
    ...env,
    ...faultyDatabases(env, dbRate),
    DELIVERY_QUEUE: faultyQueue(env.DELIVERY_QUEUE, env, rate(env, "SOAK_QUEUE_FAIL_RATE")),
  } as Env;
}

export default {
  fetch(request, env, ctx) {
    // The admin API and the Cron trigger are the soak's instruments: faults only where events flow.
    const ingest = new URL(request.url).pathname.startsWith("/webhooks/");
    return worker.fetch(request, ingest ? faulty(env, rate(env, "SOAK_INGEST_D1_FAIL_RATE")) : env, ctx);
  },
  queue(batch, env) {
    return worker.queue(batch, faulty(env, rate(env, "SOAK_CONSUMER_D1_FAIL_RATE")));
  },
  scheduled(controller, env) {
    return worker.scheduled(controller, env);
  },
} satisfies ExportedHandler<Env>;
