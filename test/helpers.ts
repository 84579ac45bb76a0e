import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import type { DeliveryMessage } from "../src/delivery/messages";

export const ROUTER = "https://router.example.test";

export function post(path: string, body: string | ArrayBuffer, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(
    new Request(`${ROUTER}${path}`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } }),
  );
}

export function fixture(name: string): { body: string; base64: string; hex: string } {
  const signed = env.TEST_SIGNED_FIXTURES[name];
  if (!signed) throw new Error(`no fixture ${name}`);
  return signed;
}

/**
 * Signs bodies a test builds at run time. The fixtures are signed with Node's createHmac in vitest.config.ts, and
 * test/signature.test.ts checks this helper against them, so it is not the verifier checking itself.
 */
export async function hmacSha256(secret: string, body: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
}

export async function weedmapsSignature(body: string, secret: string = env.WEEDMAPS_CLIENT_SECRET as string): Promise<string> {
  return btoa(String.fromCharCode(...(await hmacSha256(secret, body))));
}

export async function hexSignature(body: string, secret: string): Promise<string> {
  return Array.from(await hmacSha256(secret, body), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function postWeedmaps(path: string, body: string): Promise<Response> {
  return post(path, body, { Signature: await weedmapsSignature(body) });
}

/** Records every message the Worker sends to the real delivery queue (the send still goes through). */
export function captureDeliveryQueue(): { messages: { body: DeliveryMessage; delaySeconds?: number }[] } {
  const captured: { messages: { body: DeliveryMessage; delaySeconds?: number }[] } = { messages: [] };
  const queue = env.DELIVERY_QUEUE;
  const original = queue.sendBatch.bind(queue);
  vi.spyOn(queue, "sendBatch").mockImplementation(async (messages, options) => {
    for (const m of messages) captured.messages.push({ body: m.body as DeliveryMessage, delaySeconds: m.delaySeconds });
    return original(messages, options);
  });
  return captured;
}

/**
 * `exports.default.queue()` and `.scheduled()` exist only under the test-only `service_binding_extra_handlers`
 * flag, so the generated types do not list them.
 */
interface ExtraHandlers {
  queue(queueName: string, messages: { id: string; timestamp: Date; attempts: number; body: unknown }[]): Promise<{
    outcome: string;
    ackAll: boolean;
    retryBatch: { retry: boolean; delaySeconds?: number };
    explicitAcks: string[];
    retryMessages: { msgId: string; delaySeconds?: number }[];
  }>;
  scheduled(options: { cron?: string; scheduledTime?: number }): Promise<{ outcome: string; noRetry: boolean }>;
}

const worker = exports.default as unknown as ExtraHandlers;

export function runScheduled(cron = "*/5 * * * *") {
  return worker.scheduled({ cron, scheduledTime: Date.now() });
}

let messageCounter = 0;

/** Drives the real queue handler with the given bodies, as Queues would, and returns its per-message verdicts. */
export async function runDeliveryQueue(bodies: unknown[], attempts = 1, queue = "webhook-deliveries") {
  const messages = bodies.map((body) => ({
    id: `msg-${++messageCounter}`,
    timestamp: new Date(),
    attempts,
    body,
  }));
  const result = await worker.queue(queue, messages);
  return { result, ids: messages.map((m) => m.id) };
}

export interface DeliveryRowView {
  destination: string;
  generation: number;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: number;
  attempt_log: string;
}

/** An event's deliveries, every generation, read straight from the JSON in its row (not through src/storage). */
export async function deliveriesOf(eventId: string): Promise<DeliveryRowView[]> {
  const { results } = await env.DB.prepare(
    `SELECT j.value ->> 'destination' AS destination, j.value ->> 'generation' AS generation, j.value ->> 'status' AS status,
            j.value ->> 'attempts' AS attempts, j.value ->> 'lastStatusCode' AS last_status_code, j.value ->> 'lastError' AS last_error,
            j.value ->> 'nextAttemptAt' AS next_attempt_at, j.value -> 'log' AS attempt_log
     FROM events e, json_each(e.deliveries) j WHERE e.id = ?1 ORDER BY destination, generation`,
  )
    .bind(eventId)
    .all<DeliveryRowView>();
  return results;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Stands in for the internal systems: every outbound fetch goes to `handler`, and each request is kept. */
export function stubDestinations(handler: FetchHandler): { requests: Request[]; bodies: string[] } {
  const seen = { requests: [] as Request[], bodies: [] as string[] };
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init as RequestInit);
    seen.requests.push(request.clone());
    seen.bodies.push(await request.clone().text());
    return handler(request);
  });
  return seen;
}
