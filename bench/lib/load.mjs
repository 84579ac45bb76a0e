// Load generation with autocannon, plus the statistics the report needs.
import autocannon from "autocannon";

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export const round = (value, digits = 2) => (value === null || value === undefined ? null : Number(value.toFixed(digits)));

/**
 * Runs autocannon against `url` with a fresh request from `source.next()` for every request, so no body repeats.
 * Latencies come from autocannon's per-response event in fractional milliseconds: its own histogram keeps whole
 * milliseconds, too coarse for a few-millisecond overhead. Only 2xx responses count towards the latencies, as in
 * autocannon; every non-2xx and socket error counts as an error.
 */
export async function runLoad({ url, path, source, connections, duration, amount, onBody }) {
  const latencies = [];
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
        ...(onBody ? { onResponse: (status, body) => onBody(status, body) } : {}),
      },
    ],
  });
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  const ok = result["2xx"];
  return {
    requests: ok + result.non2xx,
    ok,
    errors: result.errors + result.timeouts + result.non2xx,
    // Completed 2xx responses over the measured time: failed requests must not count as throughput.
    rps: round(ok / result.duration, 1),
    p50: round(percentile(latencies, 50)),
    p99: round(percentile(latencies, 99)),
    mean: round(latencies.reduce((sum, v) => sum + v, 0) / (latencies.length || 1)),
    durationS: round(result.duration, 2),
    statusCodes: result.statusCodeStats,
  };
}
