import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { handleDeadLetterBatch, handleDeliveryBatch } from "./delivery/consumer";
import { sweepDeliveries } from "./delivery/sweeper";
import { handleError, handleNotFound } from "./errors";
import { webhooks } from "./ingest/app";

const app = new Hono<{ Bindings: Env }>();
app.use(requestId());
app.get("/healthz", (c) => c.json({ ok: true }));
app.route("/webhooks", webhooks);
app.notFound(handleNotFound);
app.onError(handleError);

/** Queue names are set in wrangler.toml; a dead-letter queue's name ends in `-dlq`. */
function queueRole(queue: string): "deliveries" | "dead-letters" {
  if (queue.endsWith("-dlq")) return "dead-letters";
  if (queue.startsWith("webhook-deliveries")) return "deliveries";
  throw new Error(`no consumer for queue "${queue}"`);
}

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    if (queueRole(batch.queue) === "dead-letters") await handleDeadLetterBatch(batch, env);
    else await handleDeliveryBatch(batch, env);
  },
  async scheduled(_controller, env) {
    await sweepDeliveries(env);
  },
} satisfies ExportedHandler<Env>;
