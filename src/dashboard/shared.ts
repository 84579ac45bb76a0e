import type { Context, Hono } from "hono";
import type { RouterDeps } from "../core/deps.ts";
import type { PayloadView } from "../core/payload-view.ts";
import {
  contextOf,
  operatorOf,
  originOf,
  type Actor,
  type OperationContext,
  type Origin,
} from "../operations/context.ts";
import type { ControlView } from "../operations/destinations.ts";

export type DashboardEnv = { Bindings: Env };
export type DashboardApp = Hono<DashboardEnv>;
export type DashboardContext = Context<DashboardEnv>;
/** A page module: adds its routes to the signed-in part of the dashboard. */
export type Pages = (app: DashboardApp, deps: RouterDeps) => void;

export const PAGE_SIZE = 50;

export const contextFor = (c: DashboardContext, deps: RouterDeps): OperationContext => contextOf(c.env, deps);

/** Where this request came from (CF-Connecting-IP, else "unknown"), as attempts and the audit log record it. */
export const originFor = (c: DashboardContext): Origin =>
  originOf("dashboard", c.get("requestId"), c.req.header("cf-connecting-ip"));

/** The signed-in operator: the admin token's id, through the dashboard. */
export const actorFor = (c: DashboardContext): Promise<Actor> => operatorOf(c.env, originFor(c));

/*
 * Forms into operation inputs. A form sends every field as text, an empty one as "", so the mapping is only this:
 * an empty field is an absent one (a search's "any"), a number field is a number when it reads as one, and a
 * datetime-local value ("2026-12-02T18:00", UTC here) gets its seconds and zone. Anything else is passed on as
 * typed, for the operation's schema to refuse with the same code and words as the admin API.
 */

/** A form field as the operation's input takes it: absent when empty. */
export function field(value: unknown): unknown {
  return value === "" ? undefined : value;
}

/** A datetime-local value as ISO (read as UTC); anything else unchanged. */
export function timeField(value: unknown): unknown {
  if (typeof value !== "string" || value === "") return field(value);
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(value)) return `${value}:00Z`;
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/.test(value)) return `${value}Z`;
  return value;
}

/** A number typed into a form; anything that does not read as one unchanged. */
export function numberField(value: unknown): unknown {
  return typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : field(value);
}

/** A JSON payload, indented for reading; anything else as it is. */
export function pretty(view: PayloadView): string {
  if (view.encoding !== "utf8") return view.data;
  try {
    return JSON.stringify(JSON.parse(view.data), null, 2);
  } catch {
    // Stored bytes that are text but not JSON are shown as they are.
    return view.data;
  }
}

/** One word for a destination's controls, the same on every page. */
export function stateOf(controls: ControlView | null): string {
  if (!controls) return "unknown";
  if (controls.paused) return "paused";
  if (controls.disabled) return "disabled by 410";
  return controls.circuit.phase === "closed" ? "active" : `circuit ${controls.circuit.phase.replace("_", " ")}`;
}

/** A duration for people: 850 ms, 2.5 s, 5 min, 6 h; the open-ended bucket as "over …". */
export function duration(ms: number | null, over = 21_600_000): string {
  if (ms === null) return "—";
  if (!Number.isFinite(ms)) return `over ${duration(over)}`;
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${ms / 1_000} s`;
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  return `${ms / 3_600_000} h`;
}

export const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? "—" : new Date(ms).toISOString().replace(".000Z", "Z");

/** The value a datetime-local input shows for a time (UTC, minutes). */
export const localInput = (ms: number) => new Date(ms).toISOString().slice(0, 16);
