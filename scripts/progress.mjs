// "Step n of N", the time elapsed and an estimate of the time left, for the long runs (`npm run bench` and `soak`).
// The steps are known up front, each with a weight: about the seconds it takes, from the load it sends. The estimate
// is the weight left times the pace so far (seconds per unit of weight done), so weights only need to be right
// relative to one another; before anything is done, the weights are read as seconds.

/** `42s`, `6m 05s`, `1h 02m`. */
export function formatDuration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/**
 * A run of `steps` (`{ name, weight }`, in the order they run). `step(name)` starts a step and returns its line;
 * `within(fraction, detail)` reports how far the current step is, for a long step that knows (the soak's sends).
 * A step the run skips is passed over; a name that is not in the list is a mistake in the caller and throws.
 */
export function createProgress(steps, { now = () => performance.now() } = {}) {
  if (steps.length === 0) throw new Error("progress: no steps");
  for (const { name, weight } of steps)
    if (!(Number.isFinite(weight) && weight > 0)) throw new Error(`progress: step "${name}" needs a positive weight`);
  const total = steps.reduce((sum, s) => sum + s.weight, 0);
  const startedAt = now();
  let current = -1;
  let fraction = 0;

  function line(detail) {
    const elapsed = now() - startedAt;
    const done = steps.slice(0, current).reduce((sum, s) => sum + s.weight, 0) + fraction * steps[current].weight;
    const left = done > 0 ? (elapsed / done) * (total - done) : (total - done) * 1000;
    const where = `step ${current + 1} of ${steps.length}${detail ? ` (${detail})` : ""}`;
    return `${where}, ${formatDuration(elapsed)} elapsed, about ${formatDuration(left)} left`;
  }

  return {
    step(name) {
      const index = steps.findIndex((s, i) => i > current && s.name === name);
      if (index < 0) {
        const after = current < 0 ? "the start" : `"${steps[current].name}"`;
        throw new Error(`progress: no step "${name}" after ${after} in ${steps.map((s) => s.name).join(", ")}`);
      }
      current = index;
      fraction = 0;
      return line();
    },
    within(part, detail) {
      if (current < 0) throw new Error("progress: within() before the first step");
      fraction = Math.min(1, Math.max(0, part));
      return line(detail);
    },
  };
}
