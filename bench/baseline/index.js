// The benchmark's bare Worker. By default it reads the whole body (as the router must before it can verify a
// signature) and answers 200 with a small JSON ack, so the router and it differ only in the work the router does.
// With `x-bench-forward: <url>` it instead POSTs the body there and returns the answer: the bare cost of one
// proxied request on this runtime, which splits the Draft overhead into the runtime's share and the router's.
// With `x-bench-floor: 1` it is the I/O floor: the durable steps any router must take before it acks (one D1 insert
// of the body and one queue send, started together as the router does), and nothing else.
// With `x-bench-deliver: <url>,<url>,…` as well, the message names those URLs, and the end-to-end floor's consumer
// (wrangler.e2e.toml, written by the benchmark) does what any router's consumer must: read the row, POST the body
// to each URL, and record the outcomes in the row, one UPDATE per message.
let table;

const SCHEMA =
  "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, body TEXT NOT NULL, outcomes TEXT)";

export default {
  async fetch(request, env) {
    const body = await request.arrayBuffer();
    const forward = request.headers.get("x-bench-forward");
    if (forward) {
      const answer = await fetch(forward, { method: "POST", headers: { "content-type": "application/json" }, body });
      return new Response(answer.body, {
        status: answer.status,
        headers: { "content-type": answer.headers.get("content-type") ?? "application/json" },
      });
    }
    if (request.headers.get("x-bench-floor")) {
      table ??= env.DB.prepare(SCHEMA)
        .run()
        .catch((err) => {
          table = undefined;
          throw err;
        });
      await table;
      const id = crypto.randomUUID();
      const to = request.headers.get("x-bench-deliver")?.split(",") ?? [];
      await Promise.all([
        env.DB.prepare("INSERT INTO events (id, received_at, body) VALUES (?1, ?2, ?3)")
          .bind(id, Date.now(), new TextDecoder().decode(body))
          .run(),
        env.QUEUE.send({ id, to }),
      ]);
      return Response.json({ received: true, eventId: id });
    }
    return Response.json({ received: true, bytes: body.byteLength });
  },

  async queue(batch, env) {
    await Promise.all(
      batch.messages.map(async (message) => {
        const { id, to } = message.body;
        const row = await env.DB.prepare("SELECT body FROM events WHERE id = ?1").bind(id).first();
        if (!row) return message.retry();
        const outcomes = await Promise.all(
          to.map(async (url) => {
            try {
              const res = await fetch(url, {
                method: "POST",
                headers: { "content-type": "application/json", "webhook-id": id, "x-router-attempt": "1" },
                body: row.body,
                signal: AbortSignal.timeout(10_000),
              });
              await res.arrayBuffer();
              return res.status;
            } catch {
              return 0;
            }
          }),
        );
        await env.DB.prepare("UPDATE events SET outcomes = ?2 WHERE id = ?1").bind(id, JSON.stringify(outcomes)).run();
        message.ack();
      }),
    );
  },
};
