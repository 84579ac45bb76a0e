// Reads the whole body (as the router must before it can verify a signature) and answers 200 with a small JSON
// ack of about the size the router sends, so the two differ only in the work the router does.
export default {
  async fetch(request) {
    const body = await request.arrayBuffer();
    return Response.json({ received: true, bytes: body.byteLength });
  },
};
