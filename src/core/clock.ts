/**
 * Time as the router sees it. Everything that reads the time or starts a timeout takes a Clock, so a test can hold
 * time still, move it on, and fire a timeout when it chooses instead of waiting for a real one.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** A signal that aborts `ms` milliseconds from now, with a `TimeoutError` reason like `AbortSignal.timeout`. */
  timeout(ms: number): AbortSignal;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  timeout: (ms) => AbortSignal.timeout(ms),
};
