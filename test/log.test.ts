import { afterEach, expect, it, vi } from "vitest";
import { configureLogging, logEvent } from "../src/telemetry/log.ts";

afterEach(() => {
  vi.restoreAllMocks();
  configureLogging({} as Env);
});

it("prints debug lines only with LOG_LEVEL=debug, and every other level always, as one JSON object per line", () => {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
  configureLogging({ LOG_LEVEL: "info" } as Env);
  logEvent("debug", "delivery_delivered", { eventId: "evt_1" });
  logEvent("info", "delivery_retry_scheduled", { eventId: "evt_1" });
  logEvent("warn", "delivery_dead", { eventId: "evt_1" });
  expect(log.mock.calls.map(([line]) => JSON.parse(String(line)).event)).toEqual(["delivery_retry_scheduled"]);
  expect(JSON.parse(String(warn.mock.calls[0]![0]))).toEqual({
    level: "warn",
    event: "delivery_dead",
    eventId: "evt_1",
  });

  configureLogging({ LOG_LEVEL: "debug" } as unknown as Env);
  logEvent("debug", "delivery_delivered", { eventId: "evt_2" });
  expect(JSON.parse(String(log.mock.calls.at(-1)![0]))).toEqual({
    level: "debug",
    event: "delivery_delivered",
    eventId: "evt_2",
  });
});
