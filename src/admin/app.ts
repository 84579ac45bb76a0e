/**
 * `/admin/*`: find events, see where they went, replay them, check routing. Every route needs the admin token except
 * the reference page and the OpenAPI document, which hold the API's shape and no data (src/admin/reference.ts). This
 * file holds what every route shares (the token, the body rules, no caching) and mounts one sub-app per resource;
 * each route calls one operation (src/operations/) and shows its result.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { auditRoutes } from "./audit.ts";
import { requireAdminToken } from "./auth.ts";
import { capacityRoutes } from "./capacity.ts";
import { configRoutes } from "./config.ts";
import { customerDataRoutes } from "./customer-data.ts";
import { deadLetterRoutes } from "./dead-letters.ts";
import { destinationRoutes } from "./destinations.ts";
import { relayRoutes } from "./relay.ts";
import { eventRoutes } from "./events.ts";
import { keyRoutes } from "./keys.ts";
import type { AdminEnv } from "./openapi.ts";
import { referenceRoutes } from "./reference.ts";
import { replayRoutes } from "./replays.ts";

const ADMIN_MAX_BODY_BYTES = 1024 * 1024;
const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Cannabis webhook router admin API",
    version: "0.1.0",
    description:
      "Find events, see where they went, replay them, and check routing. Every route needs " +
      "`Authorization: Bearer <ADMIN_TOKEN>`: in the reference page, enter the token under Authorize.",
  },
  servers: [{ url: "/admin" }],
};

export function createAdmin(deps: RouterDeps) {
  const admin = new OpenAPIHono<AdminEnv>();

  // Public, and first: the reference page and its pinned renderer, each answer with its own caching.
  admin.route("/", referenceRoutes());
  // Whatever an admin answer holds (events, payloads, the audit log, the config), no browser or proxy keeps a copy;
  // set before the token check, so refusals carry it too.
  admin.use("*", async function noStore(c, next) {
    await next();
    c.header("Cache-Control", "no-store");
  });
  // Public too: the document is the API's shape (routes, fields, error codes), the same as the source, and no data;
  // the reference page reads it before anyone has entered a token. Built at request time from every route below.
  admin.doc31("/openapi.json", OPENAPI_DOCUMENT);
  admin.use("*", requireAdminToken());
  // Every admin body is JSON; another media type is the caller's mistake, said as such rather than as a 400.
  admin.use("*", async function jsonBodiesOnly(c, next) {
    const contentType = c.req.header("content-type");
    const hasBody = Number(c.req.header("content-length") ?? 0) > 0 || c.req.header("transfer-encoding") !== undefined;
    if (hasBody && !JSON_CONTENT_TYPE.test(contentType ?? "")) throw new RouterError("unsupported_media_type");
    await next();
  });
  // Admin bodies are a replay request or a config to validate: a megabyte is far more than either needs.
  admin.use(
    "*",
    bodyLimit({
      maxSize: ADMIN_MAX_BODY_BYTES,
      onError: () => {
        throw new RouterError("payload_too_large", { detail: `admin body over ${ADMIN_MAX_BODY_BYTES} bytes` });
      },
    }),
  );
  // An empty JSON body is read as `{}`, so a POST without one is refused naming each field it lacks (the validator
  // would say only "Malformed JSON"), as one without a content type is. Reading the text here also means a body cut
  // off before its Content-Length surfaces as the runtime's own error (mapped to body_incomplete by the one
  // onError), where the validator would report it as malformed JSON.
  admin.use("*", async function emptyJsonBodyIsEmptyObject(c, next) {
    const isJson = JSON_CONTENT_TYPE.test(c.req.header("content-type") ?? "");
    if (c.req.method === "POST" && isJson && (await c.req.text()).trim() === "") {
      c.req.raw = new Request(c.req.raw, { body: "{}" });
      c.req.bodyCache = {};
    }
    await next();
  });
  admin.openAPIRegistry.registerComponent("securitySchemes", "AdminToken", {
    type: "http",
    scheme: "bearer",
    description: "The ADMIN_TOKEN Worker secret.",
  });

  for (const resource of [
    eventRoutes,
    replayRoutes,
    deadLetterRoutes,
    destinationRoutes,
    customerDataRoutes,
    configRoutes,
    auditRoutes,
    keyRoutes,
    capacityRoutes,
    relayRoutes,
  ]) {
    admin.route("/", resource(deps));
  }
  return admin;
}
