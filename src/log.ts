type Level = "info" | "warn" | "error";

/**
 * Structured JSON logs with an event name. Callers pass identifiers and reasons only: never payloads (they carry
 * customer PII and medical-recommendation data) and never secrets.
 */
export function logEvent(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
