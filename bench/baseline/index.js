// The benchmark's bare Worker. By default it reads the whole body (as the router must before it can verify a
// signature) and answers 200 with a small JSON ack, so the router and it differ only in the work the router does.
// With `x-bench-forward: <url>` it instead POSTs the body there and returns the answer: the bare cost of one
// proxied request on this runtime, which splits the Draft overhead into the runtime's share and the router's.
// With `x-bench-floor: 1` it is the I/O floor: the durable steps any router must take before it acks (one D1 insert
// of the body and one queue send, started together as the router does), and nothing else.
let table;

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
      table ??= env.DB.prepare(
        "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, body TEXT NOT NULL)",
      )
        .run()
        .catch((err) => {
          table = undefined;
          throw err;
        });
      await table;
      const id = crypto.randomUUID();
      await Promise.all([
        env.DB.prepare("INSERT INTO events (id, received_at, body) VALUES (?1, ?2, ?3)")
          .bind(id, Date.now(), new TextDecoder().decode(body))
          .run(),
        env.QUEUE.send({ id }),
      ]);
      return Response.json({ received: true, eventId: id });
    }
    return Response.json({ received: true, bytes: body.byteLength });
  },
};
