/** @jsxImportSource hono/jsx */
/**
 * Status pills: the one way a status shows on any dashboard page. A pill is its word and a colour, never the colour
 * alone (the word is the text a screen reader reads, and it reads the same in grey), so `<Pill status="dead" />`
 * renders `<span class="pill pill-bad">dead</span>`.
 *
 * Which status takes which colour class (TONES below; anything not listed is `pill-neutral`):
 * - `pill-ok` (green): delivered, active, healthy, closed, done, passed, released, enabled
 * - `pill-info` (blue): pending, running, probing, routed
 * - `pill-warn` (amber): held, paused, circuit half open, quarantined, repaired, retrying
 * - `pill-bad` (red): dead, dead letters, failing, failed, circuit open, disabled, disabled by 410, refused, error
 * - `pill-neutral` (grey): stale, superseded, cancelled, unrouted, unknown, and anything else
 *
 * A status outside this list still renders (neutral); pass `tone` to choose its colour. The styles are in
 * layout.tsx's stylesheet (`.pill`, `.pill-ok`, …).
 */

export type Tone = "ok" | "info" | "warn" | "bad" | "neutral";

const TONES: Record<string, Tone> = {
  delivered: "ok",
  active: "ok",
  healthy: "ok",
  closed: "ok",
  done: "ok",
  passed: "ok",
  released: "ok",
  enabled: "ok",
  pending: "info",
  running: "info",
  probing: "info",
  routed: "info",
  held: "warn",
  paused: "warn",
  "circuit half open": "warn",
  quarantined: "warn",
  repaired: "warn",
  retrying: "warn",
  dead: "bad",
  "dead letters": "bad",
  failing: "bad",
  failed: "bad",
  "circuit open": "bad",
  disabled: "bad",
  "disabled by 410": "bad",
  refused: "bad",
  error: "bad",
};

/** The colour a status takes: its tone from the list above, neutral when it is not listed. */
export function toneOf(status: string): Tone {
  return TONES[status] ?? "neutral";
}

/**
 * A status as a pill. `label` replaces the word shown (for example "3 dead") while `status` picks the colour;
 * `title` adds a hover text (a reason, a time).
 */
export function Pill(props: { status: string; tone?: Tone; label?: string; title?: string }) {
  const tone = props.tone ?? toneOf(props.status);
  return (
    <span class={`pill pill-${tone}`} title={props.title}>
      {props.label ?? props.status}
    </span>
  );
}

/** A time span for people, in its largest whole unit: 45 s, 3 min, 5 h, 2 days. */
export function span(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1_000);
  if (s < 60) return `${s} s`;
  if (s < 3_600) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3_600)} h`;
  return `${Math.floor(s / 86_400)} days`;
}

/** A time relative to `now`: "3 min ago", "in 40 s". */
export function relative(at: number, now: number): string {
  return at <= now ? `${span(now - at)} ago` : `in ${span(at - now)}`;
}

const exact = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

/**
 * A time as people read it at a glance ("3 min ago") with the exact UTC time on hover and for machines:
 * `<time datetime="2026-12-07T03:12:00Z" title="2026-12-07T03:12:00Z">3 min ago</time>`. `exact` shows the exact
 * time as the text too, the relative one after it.
 */
export function When(props: { at: number | null | undefined; now: number; exact?: boolean }) {
  if (props.at === null || props.at === undefined) return <>—</>;
  const iso = exact(props.at);
  return (
    <time datetime={iso} title={iso}>
      {props.exact ? `${iso} (${relative(props.at, props.now)})` : relative(props.at, props.now)}
    </time>
  );
}
