// The benchmark's bare Worker. By default it reads the whole body (as the router must before it can verify a
// signature) and answers 200 with a small JSON ack, so the router and it differ only in the work the router does.
// With `x-bench-forward: <url>` it instead POSTs the body there and returns the answer: the bare cost of one
// proxied request on this runtime, which splits the Draft overhead into the runtime's share and the router's.
export default {
  async fetch(request) {
    const body = await request.arrayBuffer();
    const forward = request.headers.get("x-bench-forward");
    if (forward) {
      const answer = await fetch(forward, { method: "POST", headers: { "content-type": "application/json" }, body });
      return new Response(answer.body, { status: answer.status, headers: { "content-type": answer.headers.get("content-type") ?? "application/json" } });
    }
    return Response.json({ received: true, bytes: body.byteLength });
  },
};
