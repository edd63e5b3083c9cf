// Human pacing (shared/engines/pacing.ts): seeded jitter, LinkedIn gaps of 8–45 minutes with at
// most 8 actions in any rolling hour, and batches spread over a window. Properties check the
// bounds for arbitrary seeds and histories; examples pin the exact behaviour.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  LINKEDIN_MAX_GAP_MS, LINKEDIN_MAX_PER_HOUR, LINKEDIN_MIN_GAP_MS, jitterMs, linkedInGapMs, linkedInSchedule,
  seedFraction, seedHash, spreadSends,
} from "../../shared/engines/pacing.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse("2026-11-24T00:00:00Z");

/** The most actions in any 60-minute window (t − 1h, t] ending at an action. */
function maxPerRollingHour(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    const inWindow = sorted.filter((a) => a > sorted[i] - HOUR && a <= sorted[i]).length;
    most = Math.max(most, inWindow);
  }
  return most;
}

describe("jitterMs", () => {
  it("is deterministic and within [0, maxMs] (property)", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 10 * HOUR }), (seed, max) => {
        const j = jitterMs(seed, max);
        expect(Number.isInteger(j)).toBe(true);
        expect(j).toBeGreaterThanOrEqual(0);
        expect(j).toBeLessThanOrEqual(max);
        expect(jitterMs(seed, max)).toBe(j);
      }),
      { numRuns: 500 },
    );
  });

  it("pins FNV-1a + fmix32 (so a change to the hash is noticed) and spreads neighbouring seeds", () => {
    expect(seedHash("")).toBe(seedHash(""));
    expect(seedHash("acct-1:0")).not.toBe(seedHash("acct-1:1"));
    const a = jitterMs("acct-1:0", HOUR), b = jitterMs("acct-1:1", HOUR);
    expect(Math.abs(a - b)).toBeGreaterThan(0);
    // Fixed values: same seed → same jitter across runs, runtimes and releases.
    expect(fnv1a([0x61])).toBe(0xe40c292c); // the published FNV-1a test vector for "a"
    expect(seedHash("a")).toBe(fmix32(0xe40c292c));
    // UTF-8 bytes, not UTF-16 code units: "ü" hashes as 0xC3 0xBC.
    expect(seedHash("ü")).toBe(fmix32(fnv1a([0xc3, 0xbc])));
  });

  it("is roughly uniform: 2,000 seeds fill all ten deciles", () => {
    const deciles = new Array(10).fill(0);
    for (let i = 0; i < 2000; i++) deciles[Math.floor(seedFraction(`lead-${i}`) * 10)]++;
    for (const d of deciles) {
      expect(d).toBeGreaterThan(120);
      expect(d).toBeLessThan(280);
    }
  });

  it("maxMs 0 gives 0; negative, NaN and infinite maxMs are rejected", () => {
    expect(jitterMs("x", 0)).toBe(0);
    expect(() => jitterMs("x", -1)).toThrow(RangeError);
    expect(() => jitterMs("x", Number.NaN)).toThrow(RangeError);
    expect(() => jitterMs("x", Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

// Reference FNV-1a (32-bit) and murmur3 fmix32, written out here to pin seedHash.
function fnv1a(bytes: number[]): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}
function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

describe("linkedInSchedule", () => {
  it("the first action of an account goes now", () => {
    expect(linkedInSchedule([], new Date(T0), "acct").getTime()).toBe(T0);
  });

  it("waits the seeded gap after the last action, whatever order the history is in", () => {
    const history = [new Date(T0 - 30 * MIN), new Date(T0 - 2 * HOUR), new Date(T0 - 5 * MIN)];
    const next = linkedInSchedule(history, new Date(T0), "acct:3").getTime();
    expect(next).toBe(T0 - 5 * MIN + linkedInGapMs("acct:3"));
    expect(linkedInSchedule([...history].reverse(), new Date(T0), "acct:3").getTime()).toBe(next);
  });

  it("goes now when the last action was longer ago than the gap", () => {
    expect(linkedInSchedule([new Date(T0 - 3 * HOUR)], new Date(T0), "s").getTime()).toBe(T0);
  });

  it("with 8 actions packed into the last 10 minutes, waits until the oldest leaves the hour", () => {
    const history = Array.from({ length: 8 }, (_, i) => new Date(T0 - 10 * MIN + i * MIN));
    const next = linkedInSchedule(history, new Date(T0), "burst").getTime();
    expect(next).toBe(T0 - 10 * MIN + HOUR); // the oldest leaves the window at exactly one hour
    expect(maxPerRollingHour([...history.map((d) => d.getTime()), next])).toBe(8);
  });

  it("gap is 8–45 minutes for any seed (property)", () => {
    fc.assert(
      fc.property(fc.string(), (seed) => {
        const g = linkedInGapMs(seed);
        expect(g).toBeGreaterThanOrEqual(LINKEDIN_MIN_GAP_MS);
        expect(g).toBeLessThanOrEqual(LINKEDIN_MAX_GAP_MS);
      }),
      { numRuns: 500 },
    );
  });

  it("scheduling back to back: gaps within 8–45 min, never more than 8 in a rolling hour (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }), fc.integer({ min: 2, max: 40 }), (account, n) => {
        const done: Date[] = [];
        let now = new Date(T0);
        for (let i = 0; i < n; i++) {
          const at = linkedInSchedule(done, now, `${account}:${i}`);
          done.push(at);
          now = at; // the next tick comes as soon as the action is done
        }
        const ts = done.map((d) => d.getTime());
        for (let i = 1; i < ts.length; i++) {
          const gap = ts[i] - ts[i - 1];
          expect(gap).toBeGreaterThanOrEqual(8 * MIN);
          expect(gap).toBeLessThanOrEqual(45 * MIN);
        }
        expect(maxPerRollingHour(ts)).toBeLessThanOrEqual(LINKEDIN_MAX_PER_HOUR);
      }),
      { numRuns: 200 },
    );
  });

  it("any history, any now: not before now, ≥ 8 min after the last action, ≤ 8 in the hour ending at it (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -3 * HOUR, max: 0 }), { maxLength: 30 }),
        fc.integer({ min: 0, max: HOUR }),
        fc.string(),
        (offsets, nowOffset, seed) => {
          const history = offsets.map((o) => new Date(T0 + o));
          const now = new Date(T0 + nowOffset);
          const at = linkedInSchedule(history, now, seed).getTime();
          expect(at).toBeGreaterThanOrEqual(now.getTime());
          if (offsets.length > 0) {
            const last = Math.max(...offsets) + T0;
            expect(at - last).toBeGreaterThanOrEqual(LINKEDIN_MIN_GAP_MS);
            const inHour = offsets.filter((o) => T0 + o > at - HOUR && T0 + o <= at).length;
            expect(inHour + 1).toBeLessThanOrEqual(LINKEDIN_MAX_PER_HOUR);
          }
          expect(linkedInSchedule(history, now, seed).getTime()).toBe(at); // deterministic
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects invalid dates", () => {
    expect(() => linkedInSchedule([], new Date(Number.NaN), "s")).toThrow(RangeError);
    expect(() => linkedInSchedule([new Date("nope")], new Date(T0), "s")).toThrow(RangeError);
  });
});

describe("spreadSends", () => {
  const start = new Date("2026-11-24T22:00:00Z");
  const end = new Date("2026-11-25T07:00:00Z");

  it("puts each send in its own equal slot, in order, inside the window", () => {
    const times = spreadSends(9, start, end, "campaign-1").map((d) => d.getTime());
    expect(times).toHaveLength(9);
    const slot = (end.getTime() - start.getTime()) / 9;
    times.forEach((t, i) => {
      expect(t).toBeGreaterThanOrEqual(start.getTime() + i * slot);
      expect(t).toBeLessThan(start.getTime() + (i + 1) * slot);
    });
    expect(spreadSends(9, start, end, "campaign-1").map((d) => d.getTime())).toEqual(times);
    expect(spreadSends(9, start, end, "campaign-2").map((d) => d.getTime())).not.toEqual(times);
  });

  it("is sorted, in the window and deterministic for any count and window (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 24 * HOUR }),
        fc.string(),
        (count, length, seed) => {
          const s = new Date(T0), e = new Date(T0 + length);
          const times = spreadSends(count, s, e, seed).map((d) => d.getTime());
          expect(times).toHaveLength(count);
          const outside = times.filter((t) => t < T0 || t >= T0 + length);
          const unordered = times.filter((t, i) => i > 0 && t < times[i - 1]);
          expect(outside).toEqual([]);
          expect(unordered).toEqual([]);
          expect(spreadSends(count, s, e, seed).map((d) => d.getTime())).toEqual(times);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("zero sends is an empty list; bad counts and empty windows are rejected", () => {
    expect(spreadSends(0, start, end, "x")).toEqual([]);
    expect(() => spreadSends(-1, start, end, "x")).toThrow(RangeError);
    expect(() => spreadSends(2.5, start, end, "x")).toThrow(RangeError);
    expect(() => spreadSends(3, end, start, "x")).toThrow(RangeError);
    expect(() => spreadSends(3, start, start, "x")).toThrow(RangeError);
    expect(() => spreadSends(3, new Date("bad"), end, "x")).toThrow(RangeError);
  });
});
