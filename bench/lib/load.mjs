// Load generation with autocannon, plus the statistics the report needs.
import autocannon from "autocannon";

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export const round = (value, digits = 2) =>
  value === null || value === undefined ? null : Number(value.toFixed(digits));

/**
 * Runs autocannon against `url` with a fresh request from `source.next()` for every request, so no body repeats.
 * Latencies come from autocannon's per-response event in fractional milliseconds: its own histogram keeps whole
 * milliseconds, too coarse for a few-millisecond overhead. A response counts as a success when it is 2xx, or
 * exactly `okStatus` when given (the bad-signature probe expects 401); anything else, and every socket error or
 * timeout, is an error, and only successes count towards latency and throughput. Returns raw samples so that
 * rounds can be merged.
 */
export async function runLoad({ url, path, source, connections, duration, amount, okStatus }) {
  const latencies = [];
  let failed = 0;
  const instance = autocannon({
    url,
    connections,
    ...(amount ? { amount } : { duration }),
    // A stalled request must show up as an error, not hang the run.
    timeout: 30,
    requests: [
      {
        method: "POST",
        path,
        setupRequest(request) {
          const { body, headers } = source.next();
          return { ...request, body, headers: { ...request.headers, ...headers } };
        },
      },
    ],
  });
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    const ok = okStatus ? statusCode === okStatus : statusCode >= 200 && statusCode < 300;
    if (ok) latencies.push(responseTime);
    else failed += 1;
  });
  const result = await instance;
  return {
    latencies,
    ok: latencies.length,
    // autocannon counts a timeout in `errors` as well as in `timeouts`.
    errors: result.errors + failed,
    durationS: result.duration,
  };
}

/** Merges the rounds of one target into the figures the report shows. */
export function summarize(runs) {
  const latencies = runs.flatMap((run) => run.latencies).sort((a, b) => a - b);
  const ok = runs.reduce((sum, run) => sum + run.ok, 0);
  const seconds = runs.reduce((sum, run) => sum + run.durationS, 0);
  // CPU per successful request, by process role (see groupCpuMs), when the runs measured it.
  let cpuMsPerRequest = null;
  if (ok > 0 && runs.every((run) => run.cpuMs)) {
    const roles = Object.keys(runs[0].cpuMs);
    cpuMsPerRequest = Object.fromEntries(
      roles.map((role) => [role, round(runs.reduce((sum, run) => sum + run.cpuMs[role], 0) / ok)]),
    );
    cpuMsPerRequest.total = round(
      roles.reduce((sum, role) => sum + runs.reduce((s, run) => s + run.cpuMs[role], 0), 0) / ok,
    );
  }
  return {
    // Completed 2xx responses over the measured time: failed requests must not count as throughput.
    rps: round(ok / seconds, 1),
    p50: round(percentile(latencies, 50)),
    p99: round(percentile(latencies, 99)),
    mean: round(latencies.reduce((sum, v) => sum + v, 0) / (latencies.length || 1)),
    requests: ok + runs.reduce((sum, run) => sum + run.errors, 0),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    seconds: round(seconds, 2),
    cpuMsPerRequest,
  };
}
