import type { Context, Hono } from "hono";
import type { ControlView } from "../control/client.ts";
import type { RouterDeps } from "../core/deps.ts";
import type { PayloadView } from "../core/payload-view.ts";
import { clientOf, type Attempt } from "../storage/attempts.ts";

export type DashboardEnv = { Bindings: Env };
export type DashboardApp = Hono<DashboardEnv>;
export type DashboardContext = Context<DashboardEnv>;
/** A page module: adds its routes to the signed-in part of the dashboard. */
export type Pages = (app: DashboardApp, deps: RouterDeps) => void;

export const PAGE_SIZE = 50;

/** An attempt at a token from this request's client (src/storage/attempts.ts: CF-Connecting-IP, else "unknown"). */
export function attemptOf(c: DashboardContext, scope: Attempt["scope"], now: number, eventId?: string): Attempt {
  return { db: c.env.DB, scope, client: clientOf(c.req.header("cf-connecting-ip")), now, via: "dashboard", requestId: c.get("requestId") ?? null, eventId };
}

/** A form's or query's time: datetime-local ("2026-12-02T18:00", read as UTC) or ISO. */
export function msOf(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A short free-text field, or nothing when absent or too long to be a real value. */
export const text = (value: unknown, max = 255) => (typeof value === "string" && value.length > 0 && value.length <= max ? value : undefined);

/** A JSON payload, indented for reading; anything else as it is. */
export function pretty(view: PayloadView): string {
  if (view.encoding !== "utf8") return view.data;
  try {
    return JSON.stringify(JSON.parse(view.data), null, 2);
  } catch {
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

export const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? "—" : new Date(ms).toISOString().replace(".000Z", "Z"));

/** The value a datetime-local input shows for a time (UTC, minutes). */
export const localInput = (ms: number) => new Date(ms).toISOString().slice(0, 16);
