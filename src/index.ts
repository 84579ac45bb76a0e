import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { admin } from "./admin/app";
import { handleDeadLetterBatch, handleDeliveryBatch } from "./delivery/consumer";
import { sweep } from "./delivery/sweeper";
import { handleError, handleNotFound } from "./errors";
import { webhooks } from "./ingest/app";
import { configureLogging } from "./log";
import { withUsage } from "./usage";

const app = new Hono<{ Bindings: Env }>();
app.use(requestId());
app.get("/healthz", (c) => c.json({ ok: true }));
app.route("/webhooks", webhooks);
app.route("/admin", admin);
app.notFound(handleNotFound);
app.onError(handleError);

/** Queue names are set in wrangler.toml; a dead-letter queue's name ends in `-dlq`. */
function queueRole(queue: string): "deliveries" | "dead-letters" {
  if (queue.endsWith("-dlq")) return "dead-letters";
  if (queue.startsWith("webhook-deliveries")) return "deliveries";
  throw new Error(`no consumer for queue "${queue}"`);
}

export default {
  async fetch(request, env, ctx) {
    configureLogging(env);
    const usage = withUsage(env, "fetch");
    const response = await app.fetch(request, usage.env, ctx);
    usage.report({ status: response.status });
    return response;
  },
  async queue(batch, env) {
    configureLogging(env);
    const usage = withUsage(env, "queue");
    if (queueRole(batch.queue) === "dead-letters") await handleDeadLetterBatch(batch, usage.env);
    else await handleDeliveryBatch(batch, usage.env);
    usage.report({ queue: batch.queue, messages: batch.messages.length });
  },
  async scheduled(_controller, env) {
    configureLogging(env);
    const usage = withUsage(env, "scheduled");
    try {
      await sweep(usage.env);
    } finally {
      usage.report();
    }
  },
} satisfies ExportedHandler<Env>;
