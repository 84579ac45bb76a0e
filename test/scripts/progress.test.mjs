// scripts/progress.mjs: the "step n of N" lines of the bench and the soak, on a clock the test moves.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createProgress, formatDuration } from "../../scripts/progress.mjs";

function manualClock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("progress over steps known up front", () => {
  it("before anything is done, reads the weights as seconds", () => {
    const clock = manualClock();
    const progress = createProgress(
      [
        { name: "setup", weight: 20 },
        { name: "load", weight: 100 },
      ],
      { now: clock.now },
    );
    assert.equal(progress.step("setup"), "step 1 of 2, 0s elapsed, about 2m 00s left");
  });

  it("scales the weights left by the pace of the steps done", () => {
    const clock = manualClock();
    const progress = createProgress(
      [
        { name: "setup", weight: 10 },
        { name: "scenario 1", weight: 30 },
        { name: "scenario 2", weight: 60 },
      ],
      { now: clock.now },
    );
    progress.step("setup");
    clock.advance(20_000); // twice as slow as the weights say: 2 s per unit
    assert.equal(progress.step("scenario 1"), "step 2 of 3, 20s elapsed, about 3m 00s left");
    clock.advance(30_000); // 50 s for 40 units: 1.25 s per unit, 60 units left
    assert.equal(progress.step("scenario 2"), "step 3 of 3, 50s elapsed, about 1m 15s left");
  });

  it("counts the part of a long step that is done, and says what it is", () => {
    const clock = manualClock();
    const progress = createProgress(
      [
        { name: "start", weight: 10 },
        { name: "send", weight: 90 },
      ],
      { now: clock.now },
    );
    progress.step("start");
    clock.advance(10_000);
    progress.step("send");
    clock.advance(45_000);
    // 55 s for 10 + 45 units: 1 s per unit, 45 left.
    assert.equal(
      progress.within(0.5, "5,000 of 10,000 sent"),
      "step 2 of 2 (5,000 of 10,000 sent), 55s elapsed, about 45s left",
    );
    assert.match(progress.within(7, "past the end"), /about 0s left$/);
  });

  it("passes over a step the run skips, and refuses one it does not know or that already ran", () => {
    const clock = manualClock();
    const progress = createProgress(
      [
        { name: "setup", weight: 1 },
        { name: "shards 2", weight: 1 },
        { name: "dashboard", weight: 1 },
      ],
      { now: clock.now },
    );
    progress.step("setup");
    assert.match(progress.step("dashboard"), /^step 3 of 3,/);
    assert.throws(() => progress.step("setup"), /no step "setup" after "dashboard"/);
    assert.throws(() => progress.step("scenario 9"), /no step "scenario 9"/);
    assert.throws(() => createProgress([{ name: "x", weight: 0 }]), /positive weight/);
    assert.throws(() => createProgress([]), /no steps/);
    assert.throws(() => createProgress([{ name: "x", weight: 1 }]).within(0.5), /before the first step/);
  });

  it("formats durations as seconds, minutes or hours", () => {
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(59_400), "59s");
    assert.equal(formatDuration(65_000), "1m 05s");
    assert.equal(formatDuration(3_720_000), "1h 02m");
    assert.equal(formatDuration(-5), "0s");
  });
});
