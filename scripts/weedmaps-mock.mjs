#!/usr/bin/env node
// A local stand-in for Weedmaps' Orders API (issue #26): the token endpoint and the order status PUT the router's
// status relay calls, with the limits Weedmaps documents (../shared/PLATFORM.md, "Weedmaps order status updates"),
// failures on demand and counters a test can read. `npm run receiver` mounts it under /weedmaps;
// `npm run mock:weedmaps` serves it alone (WEEDMAPS_MOCK_PORT, default 8790), also under /weedmaps.
//
// Documented by Weedmaps, enforced here:
// - POST /auth/token with JSON client_id, client_secret, grant_type "client_credentials", scope → 201
//   { token_type: "Bearer", expires_in: 1209600 }; the same token comes back until day 7 of its 14; 1 request a minute.
// - PUT /oos/{version}/merchants/{listing_id}/orders/{order_id} with a bearer token and { status, canceledReason? };
//   canceledReason only with CANCELED_CUSTOMER / CANCELED_SELLER, from the documented list; ids of at most 255
//   characters; 422 for invalid data.
// - 420 requests per 10 seconds across all endpoints; 429 over it.
// Assumed here, because Weedmaps does not document it (each is marked where it is decided):
// - the token's field is `access_token` (OAuth 2.0's name), and a token handed out again says the seconds it has left;
// - the PUT's success answer: 200 { orderId, status };
// - error bodies: { errors: [{ status, code, title }] } (OAuth's { error } on the token endpoint);
// - a request answered 429 does not use a slot of either limit, and a request rejected for credentials does.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import path from "node:path";

export const DEFAULT_CLIENT_ID = "local-weedmaps-client-id";
export const DEFAULT_CLIENT_SECRET = "local-weedmaps-client-secret";
export const DEFAULT_MOCK_PORT = 8790;

/** The statuses a PUT may set: the documented flow after PENDING (which Weedmaps sets itself, with the Create). */
export const SETTABLE_STATUSES = [
  "IN_PROGRESS",
  "READY_FOR_ATTAINMENT",
  "COMPLETE",
  "CANCELED_CUSTOMER",
  "CANCELED_SELLER",
  "FAILED",
];
export const CANCEL_STATUSES = ["CANCELED_CUSTOMER", "CANCELED_SELLER"];
export const CANCELED_REASONS = [
  "OUT_OF_STOCK",
  "CUSTOMER_REQUEST",
  "PAYMENT_FAILURE",
  "FRAUD_DETECTED",
  "POS_CLOSED",
  "DELIVERY_ISSUE",
  "ORDER_TOO_EXPENSIVE",
  "ID_ISSUE",
  "CUSTOMER_NO_SHOW",
  "EXCEEDS_LIMIT",
  "OTHER",
];
/** What `POST /__mock/fail` can make the next PUTs answer. */
export const FAILURE_MODES = ["429", "500", "503", "422", "423", "403", "404", "401", "slow"];

export const DEFAULT_LIMITS = {
  /** Requests across all endpoints (token and PUT) in any window of `windowMs`. */
  requestsPerWindow: 420,
  windowMs: 10_000,
  /** The token endpoint: one request in any `tokenIntervalMs`. */
  tokenIntervalMs: 60_000,
  /** A token lives 14 days; until day 7 the endpoint hands out the same one. */
  tokenLifetimeMs: 14 * 24 * 3600_000,
  tokenReuseMs: 7 * 24 * 3600_000,
  /** Ids in the path, as Weedmaps documents them. */
  maxIdLength: 255,
  /** Bodies larger than this are refused (413) before they are parsed. */
  maxBodyBytes: 64 * 1024,
};

const ID_PATTERN = /^\/oos\/([^/]+)\/merchants\/([^/]+)\/orders\/([^/]+)$/;
const VERSION_PATTERN = /^\d{4}-\d{2}$/;
const TITLES = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  422: "Unprocessable Entity",
  423: "Locked",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

const sleepReal = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const digest = (text) => createHash("sha256").update(String(text)).digest();
/** Equal strings, compared in constant time over their digests (a mock, but it should not teach a timing leak). */
const sameSecret = (a, b) => typeof a === "string" && timingSafeEqual(digest(a), digest(b));

/**
 * The mock. `handle(req, res, path)` serves one request whose path below the mount point is `path` (query string
 * allowed) and answers whether it was one of the mock's routes: on `false` nothing was written and the caller
 * answers. `stats()` is what `GET /__mock/stats` answers; `reset()` forgets everything, tokens included.
 *
 * Options: `clientId`, `clientSecret`, `now` (a clock in ms, default Date.now), `sleep` (ms → Promise, for the slow
 * failure mode), `limits` (any of DEFAULT_LIMITS), `onRequest` ({ method, path, status } after each answer).
 */
export function createWeedmapsMock(options = {}) {
  const clientId = options.clientId ?? DEFAULT_CLIENT_ID;
  const clientSecret = options.clientSecret ?? DEFAULT_CLIENT_SECRET;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? sleepReal;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const onRequest = options.onRequest ?? (() => {});
  for (const [name, value] of Object.entries(limits))
    if (!Number.isInteger(value) || value < 1) throw new Error(`limits.${name} must be a positive integer`);

  let state;
  function reset() {
    state = {
      /** Times of the requests the window admitted, oldest first (what the limit counts). */
      admitted: [],
      /** Times of every request to a limited endpoint, answered or not (what maxRequestsInWindow counts). */
      arrivals: [],
      maxRequestsInWindow: 0,
      lastTokenRequestAt: undefined,
      /** The token handed out now, and every token still valid: value → expiry. */
      current: undefined,
      tokens: new Map(),
      failures: [],
      tokenRequests: 0,
      tokensIssued: 0,
      tokenAnswers: {},
      putsByStatus: {},
      tooManyRequests: 0,
      rateLimited: 0,
      latest: new Map(),
      puts: [],
    };
  }
  reset();

  /**
   * The 420-per-10-s window at `at`: 0 when it has a slot, which the request takes unless another limit refuses it
   * (`refusedElsewhere`: a request answered 429 uses no slot); else the seconds until a slot frees.
   */
  function admit(at, refusedElsewhere = false) {
    const since = at - limits.windowMs;
    while (state.arrivals.length && state.arrivals[0] <= since) state.arrivals.shift();
    state.arrivals.push(at);
    state.maxRequestsInWindow = Math.max(state.maxRequestsInWindow, state.arrivals.length);
    while (state.admitted.length && state.admitted[0] <= since) state.admitted.shift();
    if (state.admitted.length >= limits.requestsPerWindow) {
      state.rateLimited++;
      return Math.max(1, Math.ceil((state.admitted[0] + limits.windowMs - at) / 1000));
    }
    if (!refusedElsewhere) state.admitted.push(at);
    return 0;
  }

  function send(res, status, body, headers = {}) {
    if (status === 429) state.tooManyRequests++;
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
    return status;
  }
  // Assumed shape: Weedmaps documents no Orders error body.
  const errors = (status, code, title = TITLES[status]) => ({ errors: [{ status: String(status), code, title }] });

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on("data", (chunk) => {
        size += chunk.length;
        if (size <= limits.maxBodyBytes) chunks.push(chunk);
      });
      req.on("end", () => resolve(size > limits.maxBodyBytes ? undefined : Buffer.concat(chunks).toString("utf8")));
      req.on("error", reject);
    });
  }

  function parseJson(text) {
    try {
      const value = JSON.parse(text);
      return value && typeof value === "object" && !Array.isArray(value) ? value : undefined;
    } catch {
      return undefined;
    }
  }

  // POST /auth/token
  async function token(req, res, at) {
    state.tokenRequests++;
    const count = (status) => {
      state.tokenAnswers[status] = (state.tokenAnswers[status] ?? 0) + 1;
      return status;
    };
    const waitMinute =
      state.lastTokenRequestAt !== undefined && at - state.lastTokenRequestAt < limits.tokenIntervalMs
        ? Math.max(1, Math.ceil((state.lastTokenRequestAt + limits.tokenIntervalMs - at) / 1000))
        : 0;
    const waitWindow = admit(at, waitMinute > 0);
    if (waitWindow || waitMinute) {
      await readBody(req);
      // Refused by either limit, it says when both will let it through.
      const wait = Math.max(waitWindow, waitMinute);
      return count(send(res, 429, { error: "rate_limited" }, { "retry-after": String(wait) }));
    }
    state.lastTokenRequestAt = at;
    const text = await readBody(req);
    if (text === undefined) return count(send(res, 413, { error: "invalid_request" }));
    const body = parseJson(text);
    if (!body) return count(send(res, 400, { error: "invalid_request" }));
    if (
      body.grant_type !== "client_credentials" ||
      !sameSecret(body.client_id, clientId) ||
      !sameSecret(body.client_secret, clientSecret)
    )
      return count(send(res, 401, { error: "invalid_client" }));
    for (const [value, expiresAt] of state.tokens) if (expiresAt <= at) state.tokens.delete(value);
    if (!state.current || at - state.current.issuedAt >= limits.tokenReuseMs) {
      state.current = { value: `wm-mock-${randomBytes(24).toString("hex")}`, issuedAt: at };
      state.tokens.set(state.current.value, at + limits.tokenLifetimeMs);
      state.tokensIssued++;
    }
    const expiresAt = state.tokens.get(state.current.value);
    return count(
      send(res, 201, {
        // `access_token` is an assumption (OAuth 2.0's name); Weedmaps' page shows token_type and expires_in. A token
        // handed out again says the seconds it has left (an assumption too: the page shows a fresh token's 1209600).
        access_token: state.current.value,
        token_type: "Bearer",
        expires_in: Math.round((expiresAt - at) / 1000),
        // Granted scopes may be a subset of those asked for; the mock grants what was asked.
        scope: typeof body.scope === "string" ? body.scope : "",
      }),
    );
  }

  function validBearer(req, at) {
    const match = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? "");
    if (!match) return false;
    const expiresAt = state.tokens.get(match[1]);
    return expiresAt !== undefined && at < expiresAt;
  }

  /** The problems with a PUT's path and body, as codes; empty when Weedmaps would take it. */
  function invalid(version, listingId, orderId, body) {
    const problems = [];
    if (!VERSION_PATTERN.test(version)) problems.push("invalid_version");
    if (listingId === undefined || listingId.length === 0 || listingId.length > limits.maxIdLength)
      problems.push("invalid_listing_id");
    if (orderId === undefined || orderId.length === 0 || orderId.length > limits.maxIdLength)
      problems.push("invalid_order_id");
    if (!body) return [...problems, "invalid_json"];
    if (!SETTABLE_STATUSES.includes(body.status)) problems.push("invalid_status");
    if ("canceledReason" in body) {
      if (!CANCELED_REASONS.includes(body.canceledReason)) problems.push("invalid_canceled_reason");
      else if (!CANCEL_STATUSES.includes(body.status)) problems.push("canceled_reason_without_cancel");
    }
    return problems;
  }

  const decode = (segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return undefined;
    }
  };

  // PUT /oos/{version}/merchants/{listing_id}/orders/{order_id}
  async function put(req, res, at, match) {
    const [, version, listingSegment, orderSegment] = match;
    const listingId = decode(listingSegment);
    const orderId = decode(orderSegment);
    const record = {
      at,
      version,
      listingId: listingId ?? listingSegment,
      orderId: orderId ?? orderSegment,
      status: null,
      canceledReason: null,
      answered: 0,
    };
    state.puts.push(record);
    const answer = (status, body, headers) => {
      record.answered = send(res, status, body, headers);
      state.putsByStatus[status] = (state.putsByStatus[status] ?? 0) + 1;
      return status;
    };
    const waitWindow = admit(at);
    // A failure on demand is taken when the request arrives, so the next n PUTs get it in their order of arrival.
    const failure = waitWindow ? undefined : takeFailure();
    const text = await readBody(req);
    const body = text === undefined ? undefined : parseJson(text);
    if (body) {
      record.status = typeof body.status === "string" ? body.status : null;
      record.canceledReason = typeof body.canceledReason === "string" ? body.canceledReason : null;
    }
    if (waitWindow) return answer(429, errors(429, "rate_limited"), { "retry-after": String(waitWindow) });
    if (failure && failure.mode === "slow") await sleep(failure.delayMs);
    else if (failure) {
      const status = Number(failure.mode);
      return answer(
        status,
        errors(status, "mock_failure", `${TITLES[status]} (failing on purpose)`),
        status === 429 ? { "retry-after": String(failure.retryAfter) } : {},
      );
    }
    if (text === undefined) return answer(413, errors(413, "body_too_large"));
    if (!validBearer(req, at)) return answer(401, errors(401, "unauthorized"), { "www-authenticate": "Bearer" });
    const problems = invalid(version, listingId, orderId, body);
    if (problems.length)
      return answer(422, { errors: problems.map((code) => ({ status: "422", code, title: TITLES[422] })) });
    const listing = state.latest.get(listingId) ?? new Map();
    state.latest.set(listingId, listing);
    listing.set(orderId, {
      status: body.status,
      ...(body.canceledReason ? { canceledReason: body.canceledReason } : {}),
      at,
    });
    // An assumption: Weedmaps documents neither the success code nor the body of this PUT.
    return answer(200, { orderId, status: body.status });
  }

  function takeFailure() {
    const next = state.failures[0];
    if (!next) return undefined;
    next.remaining--;
    if (next.remaining === 0) state.failures.shift();
    return next;
  }

  /** `{ mode, count?, delayMs?, retryAfter? }` → a queued failure, or the reason it is refused. */
  function parseFailure(body) {
    if (!body) return { error: "the body must be a JSON object" };
    const mode = String(body.mode ?? "");
    if (!FAILURE_MODES.includes(mode)) return { error: `mode must be one of ${FAILURE_MODES.join(", ")}` };
    const count = body.count ?? 1;
    const delayMs = body.delayMs ?? 1000;
    const retryAfter = body.retryAfter ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 100_000)
      return { error: "count must be an integer from 1 to 100000" };
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 600_000)
      return { error: "delayMs must be an integer from 0 to 600000" };
    if (!Number.isInteger(retryAfter) || retryAfter < 0 || retryAfter > 86_400)
      return { error: "retryAfter must be an integer from 0 to 86400" };
    return { failure: { mode, count, remaining: count, delayMs, retryAfter } };
  }

  async function control(req, res, route) {
    if (route === "stats") return send(res, 200, stats());
    if (route === "reset") {
      await readBody(req);
      reset();
      return send(res, 200, { reset: true });
    }
    const text = await readBody(req);
    const parsed = parseFailure(text === undefined ? undefined : parseJson(text));
    if (parsed.error) return send(res, 400, { error: "invalid_failure", message: parsed.error });
    state.failures.push(parsed.failure);
    return send(res, 200, { queued: describeFailures() });
  }

  const describeFailures = () =>
    state.failures.map(({ mode, remaining, delayMs, retryAfter }) => ({
      mode,
      remaining,
      ...(mode === "slow" ? { delayMs } : {}),
      ...(mode === "429" ? { retryAfter } : {}),
    }));

  function stats() {
    return {
      tokenRequests: state.tokenRequests,
      tokensIssued: state.tokensIssued,
      tokenAnswers: { ...state.tokenAnswers },
      putRequests: state.puts.length,
      putsByStatus: { ...state.putsByStatus },
      /** Every 429 answered: the window, the token endpoint's minute, and failures on demand. */
      tooManyRequests: state.tooManyRequests,
      /** The 429s of the 420-per-10-s window alone. */
      rateLimited: state.rateLimited,
      /** The most requests (answered 429 or not) that arrived within any window: above the limit means a burst. */
      maxRequestsInWindow: state.maxRequestsInWindow,
      limits: { requestsPerWindow: limits.requestsPerWindow, windowMs: limits.windowMs },
      pendingFailures: describeFailures(),
      /** latest[listingId][orderId]: the last status a PUT set (answered 200). */
      latest: Object.fromEntries(
        [...state.latest].map(([listingId, orders]) => [
          listingId,
          Object.fromEntries([...orders].map(([orderId, one]) => [orderId, { ...one }])),
        ]),
      ),
      puts: state.puts.map((one) => ({ ...one })),
    };
  }

  const ROUTES = {
    "/auth/token": { POST: "token" },
    "/__mock/stats": { GET: "stats" },
    "/__mock/reset": { POST: "reset" },
    "/__mock/fail": { POST: "fail" },
  };

  function handle(req, res, requestPath) {
    const pathname = requestPath.split("?")[0];
    const orderMatch = ID_PATTERN.exec(pathname);
    const methods = orderMatch ? { PUT: "put" } : ROUTES[pathname];
    if (!methods) return false;
    const route = methods[req.method];
    const at = now();
    let work;
    if (!route) {
      res.setHeader("allow", Object.keys(methods).join(", "));
      work = Promise.resolve(send(res, 405, errors(405, "method_not_allowed")));
    } else if (route === "token") work = token(req, res, at);
    else if (route === "put") work = put(req, res, at, orderMatch);
    else work = control(req, res, route);
    work.then(
      (status) => onRequest({ method: req.method, path: pathname, status }),
      () => {
        if (!res.headersSent) send(res, 500, errors(500, "mock_error"));
        else res.destroy();
        onRequest({ method: req.method, path: pathname, status: 500 });
      },
    );
    return true;
  }

  return { handle, stats, reset };
}

/** `/weedmaps/x` → `/x`; a path outside the mount → undefined. */
export function belowMount(url, mount = "/weedmaps") {
  if (url === mount || url.startsWith(`${mount}?`)) return "/";
  return url.startsWith(`${mount}/`) ? url.slice(mount.length) : undefined;
}

/** `WEEDMAPS_MOCK_PORT`: a port number, else DEFAULT_MOCK_PORT when unset. */
export function mockPort(text) {
  if (text === undefined || text === "") return DEFAULT_MOCK_PORT;
  const port = Number(text);
  if (!/^\d+$/.test(String(text)) || port < 1 || port > 65_535)
    throw new Error(`WEEDMAPS_MOCK_PORT must be a port number from 1 to 65535, got "${text}"`);
  return port;
}

/** The client id and secret the mock accepts: WEEDMAPS_API_CLIENT_ID / _SECRET of the local secrets, else defaults. */
export function mockCredentials(values) {
  return {
    clientId: values.WEEDMAPS_API_CLIENT_ID || DEFAULT_CLIENT_ID,
    clientSecret: values.WEEDMAPS_API_CLIENT_SECRET || DEFAULT_CLIENT_SECRET,
  };
}

const USAGE = `usage: [WEEDMAPS_MOCK_PORT=8790] npm run mock:weedmaps -- [--quiet]
Serves the Weedmaps Orders API mock on http://127.0.0.1:<port>/weedmaps: POST /auth/token, PUT
/oos/<version>/merchants/<listing>/orders/<order>, and GET /__mock/stats, POST /__mock/fail, POST /__mock/reset.
  --quiet   no line per request`;

async function main() {
  const { localSecrets, parseArgs } = await import("./local-env.mjs");
  let port;
  let options;
  try {
    options = parseArgs(process.argv.slice(2), { quiet: "boolean", help: "boolean" });
    if (options._.length) throw new Error(`unexpected argument "${options._[0]}"`);
    port = mockPort(process.env.WEEDMAPS_MOCK_PORT);
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (options.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const { file, values } = localSecrets();
  const quiet = options.quiet;
  const mock = createWeedmapsMock({
    ...mockCredentials(values),
    onRequest: ({ method, path: where, status }) => {
      if (!quiet) console.log(`[weedmaps-mock] ${method} ${where} → ${status}`);
    },
  });
  const server = createServer((req, res) => {
    // Served under /weedmaps like in the receiver, so only the port differs; the bare paths work too.
    if (mock.handle(req, res, belowMount(req.url) ?? req.url)) return;
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors: [{ status: "404", code: "not_found", title: "Not Found" }] }));
  });
  server.listen(port, "127.0.0.1", () => {
    console.log(
      `[weedmaps-mock] Weedmaps Orders API mock on http://127.0.0.1:${port}/weedmaps (credentials: WEEDMAPS_API_CLIENT_ID / WEEDMAPS_API_CLIENT_SECRET from ${file}, else the defaults)`,
    );
    console.log(
      "[weedmaps-mock] control: GET /weedmaps/__mock/stats, POST /weedmaps/__mock/fail, POST /weedmaps/__mock/reset",
    );
  });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) await main();
