type Level = "debug" | "info" | "warn" | "error";

let debugEnabled = false;

/**
 * `LOG_LEVEL=debug` adds a line for every event that went well (each delivery, each Draft answer). They are off by
 * default: Workers Logs bills every line beyond the plan's allowance, and the event's row already records them.
 * Set per invocation from the Worker's vars, which are the same for every invocation of a deployment.
 */
export function configureLogging(env: Env): void {
  debugEnabled = (env as { LOG_LEVEL?: string }).LOG_LEVEL === "debug";
}

/**
 * Structured JSON logs with an event name. Callers pass identifiers and reasons only: never payloads (they carry
 * customer PII and medical-recommendation data) and never secrets.
 */
export function logEvent(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  if (level === "debug" && !debugEnabled) return;
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
