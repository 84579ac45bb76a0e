import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { createAdmin } from "../admin/app.ts";
import { createDashboard, errorPage } from "../dashboard/app.tsx";
import { SYSTEM_CLOCK } from "../core/clock.ts";
import type { RouterDeps } from "../core/deps.ts";
import { BUILTIN_PROVIDERS } from "../core/providers/registry.ts";
import { handleDeliveryBatch } from "../delivery/consumer.ts";
import { handleDeadLetterBatch } from "../delivery/dead-letters.ts";
import { sweep, SWEEP_GRACE_MS } from "../delivery/sweeper.ts";
import { loadConfig, readVar } from "../config/load.ts";
import { workerReadiness } from "../config/readiness.ts";
import { publicReadiness } from "../core/readiness.ts";
import { shardsOf } from "../config/shards.ts";
import { CapacityWatch } from "../control/capacity.ts";
import { createWebhooks } from "../ingest/app.ts";
import { createRelay } from "../ingest/relay.ts";
import { ROLLUP_LAG_MS, runRollupWalk } from "../maintenance/rollup.ts";
import { runMaintenanceWalk } from "../maintenance/walk.ts";
import { configureLogging, logEvent } from "../telemetry/log.ts";
import { withUsage } from "../telemetry/usage.ts";
import { handleError, handleNotFound, responderFor } from "./errors.ts";
import { errorMessage } from "../core/errors.ts";

/**
 * `SWEEP_GRACE_SECONDS` (local only, for the soak and walkthroughs) shortens how long a pending delivery must be
 * overdue before the sweeper re-enqueues it; production keeps 10 minutes.
 */
function sweepGraceMs(env: Env): number {
  const seconds = Number(readVar(env, "SWEEP_GRACE_SECONDS"));
  return Number.isFinite(seconds) && seconds >= 1 ? seconds * 1000 : SWEEP_GRACE_MS;
}

/** `ROLLUP_LAG_SECONDS` (local only, for the browser test and walkthroughs): how far the rollup walk stays behind. */
function rollupLagMs(env: Env): number {
  const seconds = Number(readVar(env, "ROLLUP_LAG_SECONDS"));
  return Number.isFinite(seconds) && seconds >= 1 ? seconds * 1000 : ROLLUP_LAG_MS;
}

/** Queue names are set in wrangler.toml; a dead-letter queue's name ends in `-dlq`. */
function queueRole(queue: string): "deliveries" | "dead-letters" {
  if (queue.endsWith("-dlq")) return "dead-letters";
  if (queue.startsWith("webhook-deliveries")) return "deliveries";
  throw new Error(`no consumer for queue "${queue}"`);
}

/**
 * The Worker: the HTTP app (webhooks, admin), the queue consumers and the Cron sweeper, built from the providers and
 * the clock it is given. src/index.ts exports the production one.
 */
export function createWorker(options: Partial<RouterDeps> = {}) {
  const deps: RouterDeps = { providers: options.providers ?? BUILTIN_PROVIDERS, clock: options.clock ?? SYSTEM_CLOCK };
  // The shards' sizes as this isolate saw them, from ingest's writes and the consumer's.
  const capacity = new CapacityWatch(deps.clock);
  const app = new Hono<{ Bindings: Env }>();
  // A caller's X-Request-Id is echoed into logs and error bodies, so only a short token of safe characters is kept
  // (Hono's own check: word characters, `-` and `=`); anything else gets a fresh UUID.
  app.use(requestId({ limitLength: 64 }));
  // Liveness: the isolate answers. Readiness is /readyz.
  app.get("/healthz", (c) => c.json({ ok: true }));
  // Ready for traffic: the config loads and every secret and binding it needs is there (src/core/readiness.ts).
  // 503 names each failing check by field and secret name, never a value, so a deploy gate or a probe can see why.
  app.get("/readyz", async (c) => {
    const report = await workerReadiness(c.env, deps.providers);
    return c.json(publicReadiness(report), report.ready ? 200 : 503, { "Cache-Control": "no-store" });
  });
  app.route("/webhooks", createWebhooks(deps, capacity));
  app.route("/relay", createRelay(deps, capacity));
  app.route("/admin", createAdmin(deps));
  app.route("/dashboard", createDashboard(deps));
  app.notFound(handleNotFound);
  const respond = responderFor(errorPage);
  app.onError((err, c) => handleError(err, c, respond(c)));

  /** The consumer's writes grow the shards too; with a config that does not load, its batch runs unwatched. */
  function watchShards(env: Env, ctx: ExecutionContext | undefined) {
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(env, deps.providers);
    } catch {
      return { env, settle: () => undefined };
    }
    return capacity.watch(env, shardsOf(env, config), ctx, config);
  }

  return {
    async fetch(request, env, ctx) {
      configureLogging(env);
      const usage = withUsage(env, "fetch");
      const response = await app.fetch(request, usage.env, ctx);
      usage.report({ status: response.status });
      return response;
    },
    async queue(batch, env, ctx?: ExecutionContext) {
      configureLogging(env);
      const usage = withUsage(env, "queue");
      const watched = watchShards(usage.env, ctx);
      try {
        if (queueRole(batch.queue) === "dead-letters")
          await handleDeadLetterBatch(batch, watched.env, deps.clock, deps.providers);
        else await handleDeliveryBatch(batch, watched.env, deps);
      } finally {
        watched.settle();
      }
      usage.report({ queue: batch.queue, messages: batch.messages.length });
    },
    async scheduled(_controller, env) {
      configureLogging(env);
      // A usage line for each job, so the benchmark's cost table can tell the sweep, the walk and the rollups apart.
      const sweepUsage = withUsage(env, "scheduled");
      const walkUsage = withUsage(env, "maintenance");
      const rollupUsage = withUsage(env, "rollup");
      // Each on its own: a failing walk never holds up the recovery of lost messages, nor the reverse.
      const [swept, walked, rolled] = await Promise.allSettled([
        // Every shard's outbox and walk (src/delivery/sweeper.ts).
        (async () =>
          sweep(sweepUsage.env, loadConfig(env, deps.providers), deps.clock.now(), sweepGraceMs(env)))().finally(() =>
          sweepUsage.report(),
        ),
        (async () => runMaintenanceWalk(walkUsage.env, loadConfig(env, deps.providers), deps.clock.now()))().then(
          (report) => walkUsage.report({ ...report }),
          (err: unknown) => {
            walkUsage.report();
            throw err;
          },
        ),
        (async () =>
          runRollupWalk(
            rollupUsage.env.DB,
            shardsOf(rollupUsage.env, loadConfig(env, deps.providers)),
            deps.clock.now(),
            rollupLagMs(env),
          ))().then(
          (report) => rollupUsage.report({ ...report }),
          (err: unknown) => {
            rollupUsage.report();
            throw err;
          },
        ),
      ]);
      if (rolled.status === "rejected")
        logEvent("error", "rollup_failed", { errorMessage: errorMessage(rolled.reason) });
      if (walked.status === "rejected")
        logEvent("error", "maintenance_failed", { errorMessage: errorMessage(walked.reason) });
      if (swept.status === "rejected") throw swept.reason;
    },
  } satisfies ExportedHandler<Env>;
}
