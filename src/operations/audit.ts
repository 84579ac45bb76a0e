/** The audit log, newest first: who saw or removed customer data, changed a destination, replayed or signed in. */
import type { z } from "@hono/zod-openapi";
import { AuditCursorSchema, decodeCursor, nextCursor } from "../core/cursor.ts";
import { listAudit } from "../storage/audit.ts";
import type { OperationContext } from "./context.ts";
import type { AuditQuery } from "./inputs.ts";

export { AUDIT_ACTIONS, type AuditEntry } from "../storage/audit.ts";

export async function auditLog(ctx: OperationContext, q: z.output<typeof AuditQuery>) {
  const before = q.cursor ? decodeCursor(q.cursor, AuditCursorSchema)[0] : null;
  const entries = await listAudit(ctx.env.DB, before, q.limit, q.eventId);
  return { entries, nextCursor: nextCursor(entries, q.limit, (e) => [e.id]) };
}
