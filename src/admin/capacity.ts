/** `/capacity`: how full each shard (D1 database) is, and how soon it fills at the current rate. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { capacityReport } from "../operations/capacity.ts";
import { contextFor, errors, iso, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";

export function capacityRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/capacity",
      summary: "Each shard's size against D1's 10 GB, its growth, and the days until it stops taking new events",
      description:
        "Sizes are D1's own (`meta.size_after` on every write), recorded by each isolate at most once a minute. " +
        "Events per day come from the rollups of the last 24 hours; rows written per event and bytes per event from " +
        "the shard's growth window (a day). A shard alerts at `warnPercent` and `criticalPercent`; past " +
        "`readOnlyPercent` it takes no new events: the router makes it read-only (audited, alerted) when another " +
        "shard has room, and when none has, ingest answers `503 storage_full`. Every configured shard is listed, " +
        "with its state in the current shard map.",
      security,
      responses: { 200: json(S.CapacitySchema, "Every shard's figures"), ...errors },
    }),
    async (c) => {
      const { now, thresholds, allFull, shards } = await capacityReport(contextFor(c, deps));
      return c.json(
        valid(S.CapacitySchema, {
          at: iso(now)!,
          thresholds,
          allFull,
          shards: shards.map(({ readOnly, ...s }) => ({
            ...s,
            readOnlySince: iso(readOnly?.since),
            measuredAt: iso(s.measuredAt),
          })),
        }),
        200,
      );
    },
  );

  return app;
}
