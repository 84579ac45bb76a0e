/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import type { ReadinessProblem } from "../core/readiness.ts";

/**
 * The dashboard's page frame: server-rendered, no client JavaScript, one stylesheet. Readable contrast, visible
 * focus, and a single column at a phone's width. The stylesheet is a file of its own, not a <style> element, so the
 * Content-Security-Policy allows styles from this origin only and nothing inline.
 */
export const STYLE = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #4a5360; --line: #d0d7de; --accent: #0b5cad; --bad: #a40e26; --ok: #116329; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: #fff; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.25rem; align-items: center; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
header strong { margin-right: auto; }
nav a, a { color: var(--accent); }
main { padding: 1rem; max-width: 72rem; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .75rem; overflow: auto; max-height: 32rem; }
form.inline { display: inline; }
fieldset { border: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; }
label { display: flex; flex-direction: column; font-size: .9rem; color: var(--muted); }
input, select, textarea, button { font: inherit; padding: .3rem .5rem; }
button { background: var(--accent); color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
.pill { display: inline-block; padding: 0 .5rem; border: 1px solid; border-radius: 999px; font-size: .85rem; font-weight: 600; line-height: 1.5; white-space: nowrap; }
.pill-ok { background: #dafbe1; color: #0d4f20; border-color: #4ac26b; }
.pill-info { background: #ddf4ff; color: #0a4a8c; border-color: #54aeff; }
.pill-warn { background: #fff8c5; color: #6a4200; border-color: #d4a72c; }
.pill-bad { background: #ffebe9; color: #8a0b20; border-color: #ff8182; }
.pill-neutral { background: #f6f8fa; color: var(--muted); border-color: var(--line); }
.status-dead, .bad { color: var(--bad); font-weight: 600; }
.status-delivered, .good { color: var(--ok); font-weight: 600; }
.notice { border-left: 4px solid var(--accent); padding: .25rem .75rem; background: #f1f8ff; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.chart { margin: .25rem 0 1rem; max-width: 32rem; }
.chart svg { width: 100%; height: 6rem; display: block; }
.chart rect { fill: var(--accent); }
.chart .axis { stroke: var(--muted); stroke-width: 1; }
.chart .tick { font-size: 10px; fill: var(--muted); }
.chart figcaption { font-size: .85rem; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(18rem, 1fr)); gap: 0 1.5rem; }
textarea { width: 100%; font-family: ui-monospace, monospace; font-size: .85rem; }
.muted { color: var(--muted); }
.problems { border-left: 4px solid var(--bad); padding: .25rem .75rem; margin-bottom: 1rem; background: #fff5f5; }
.problems h2 { margin: .25rem 0; font-size: 1.05rem; color: var(--bad); }
.problems code { overflow-wrap: anywhere; }
td, code, time { overflow-wrap: anywhere; }
fieldset { min-width: 0; }
input, select, textarea { max-width: 100%; }
.columns > * { min-width: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
.health { border-left: 4px solid; padding: .25rem .75rem; margin: 0 0 1.25rem; }
.health-ok { border-color: var(--ok); background: #f0fff4; }
.health-bad { border-color: var(--bad); background: #fff5f5; }
.health h2 { margin: .25rem 0; font-size: 1.05rem; color: var(--bad); }
.health ul { margin: .25rem 0; padding-left: 1.25rem; }
.health li { margin: .3rem 0; }
.pills { display: flex; flex-wrap: wrap; gap: .25rem; list-style: none; margin: 0; padding: 0; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
a.button { display: inline-block; background: var(--accent); color: #fff; border-radius: 4px; padding: .3rem .5rem; text-decoration: none; }
a.button.secondary, button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
@media (max-width: 640px) {
  .columns { grid-template-columns: 1fr; }
  table { display: block; overflow-x: auto; }
  table:not(.stack) td { overflow-wrap: break-word; }
  table.stack, table.stack tbody, table.stack tr { display: block; width: 100%; }
  table.stack caption { display: block; text-align: left; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  table.stack tr { border-bottom: 1px solid var(--line); padding: .35rem 0; }
  table.stack td { display: flow-root; width: 100%; border: 0; padding: .15rem .25rem .15rem 7.5rem; }
  table.stack td::before { content: attr(data-label); float: left; width: 7rem; margin-left: -7.25rem; color: var(--muted); font-weight: 600; }
}
`;

/** FNV-1a of the stylesheet: its URL changes with its content, so a browser may keep it for a day. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, "0");
}

export const STYLE_PATH = "/style.css";
const STYLE_HREF = `/dashboard${STYLE_PATH}?v=${fnv1a(STYLE)}`;

export function Page(props: { title: string; signedIn: boolean; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · webhook router`}</title>
        <link rel="stylesheet" href={STYLE_HREF} />
      </head>
      <body>
        <header>
          <strong>webhook router</strong>
          {props.signedIn && (
            <>
              <nav aria-label="Dashboard">
                <a href="/dashboard/overview">Overview</a> · <a href="/dashboard/events">Events</a> ·{" "}
                <a href="/dashboard/dead-letters">Dead letters</a> · <a href="/dashboard/replays">Replays</a> ·{" "}
                <a href="/dashboard/destinations">Destinations</a> · <a href="/dashboard/routing">Routing</a> ·{" "}
                <a href="/dashboard/customer-data">Customer data</a> · <a href="/dashboard/keys">Keys</a> ·{" "}
                <a href="/dashboard/capacity">Capacity</a> · <a href="/dashboard/audit">Audit log</a>
              </nav>
              <form class="inline" method="post" action="/dashboard/sign-out">
                <button type="submit">Sign out</button>
              </form>
              <form class="inline" method="post" action="/dashboard/sign-out-everywhere">
                <button type="submit">Sign out everywhere</button>
              </form>
            </>
          )}
        </header>
        <main>
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/**
 * What is keeping the router from taking traffic (src/core/readiness.ts), each problem by its field or secret name:
 * shown at the top of every signed-in page while any is open. Never a secret's value: the problems carry none.
 */
export function ReadinessProblems(props: { problems: readonly ReadinessProblem[] }) {
  return (
    <section class="problems" aria-label="Configuration problems">
      <h2>Not ready for traffic: /readyz answers 503</h2>
      <ul>
        {props.problems.map((problem) => (
          <li>
            <code>{problem.field ?? problem.names?.join(", ")}</code>: {problem.message}
          </li>
        ))}
      </ul>
      <p class="muted">
        Fix the config (router.config.json, or the ROUTER_CONFIG variable) and deploy it, or set the secret (
        <code>npx wrangler secret put NAME</code>; locally in .dev.vars). <code>npm run validate</code> checks both.
      </p>
    </section>
  );
}
