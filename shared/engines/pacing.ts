// Human pacing for the timing engine (product.md §5–6): seeded jitter so sends don't all land on
// the minute, LinkedIn actions spaced like a person (random gaps of 8–45 minutes, at most 8 in
// any rolling hour), and a batch spread over its sending window. Pure functions: the randomness
// comes from a seed string, so the same inputs always give the same schedule (a redelivered tick
// computes the same time) while different seeds look random.
//
// Decisions:
// - Hash: FNV-1a (32-bit) over the seed's UTF-8 bytes, then murmur3's fmix32 finaliser so seeds
//   that differ in one trailing character ("acct:1", "acct:2") still land far apart.
// - jitterMs(seed, max) is an integer in [0, max], both ends reachable in principle.
// - LinkedIn gap: 8 min + jitter(seed, 37 min), so in [8, 45] minutes after the latest action.
//   "Rolling hour" is any 60-minute window: a new action at t is allowed when fewer than 8 earlier
//   actions lie in (t − 60 min, t]. With gaps of at least 8 minutes nine actions span ≥ 64 min,
//   so the hour cap only binds when the history holds actions made elsewhere (by hand, another
//   tool) closer together than that.
// - spreadSends: the window is cut into `count` equal slots and each send gets a seeded moment
//   inside its slot: evenly spread over the window, never two in one slot, in order.

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export const LINKEDIN_MIN_GAP_MS = 8 * MINUTE_MS;
export const LINKEDIN_MAX_GAP_MS = 45 * MINUTE_MS;
export const LINKEDIN_MAX_PER_HOUR = 8;

const encoder = new TextEncoder();

/** 32-bit hash of a seed: FNV-1a over UTF-8, finalised with murmur3 fmix32. */
export function seedHash(seed: string): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(seed)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A fraction in [0, 1) from a seed. */
export function seedFraction(seed: string): number {
  return seedHash(seed) / 0x1_0000_0000;
}

/** Deterministic jitter: an integer number of milliseconds in [0, maxMs]. Throws on a bad maxMs. */
export function jitterMs(seed: string, maxMs: number): number {
  if (!Number.isFinite(maxMs) || maxMs < 0) throw new RangeError(`jitterMs: maxMs must be a finite number ≥ 0, got ${maxMs}`);
  const max = Math.floor(maxMs);
  return Math.floor(seedFraction(seed) * (max + 1));
}

function timeOf(d: Date, what: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(t)) throw new RangeError(`${what}: invalid date`);
  return t;
}

/** The seeded gap before the next LinkedIn action, in [8, 45] minutes. */
export function linkedInGapMs(seed: string): number {
  return LINKEDIN_MIN_GAP_MS + jitterMs(`linkedin-gap:${seed}`, LINKEDIN_MAX_GAP_MS - LINKEDIN_MIN_GAP_MS);
}

/**
 * The earliest time for the next LinkedIn action of one account: not before `now`, a seeded 8–45
 * minute gap after the latest previous action, and no more than 8 actions in any rolling hour
 * counting this one. `previousActionsAt` may be unsorted; `seed` should name the account and the
 * action (e.g. `${accountId}:${actionCount}`) so a retry gets the same answer.
 */
export function linkedInSchedule(previousActionsAt: readonly Date[], now: Date, seed: string): Date {
  const nowMs = timeOf(now, "linkedInSchedule now");
  const history = previousActionsAt.map((d) => timeOf(d, "linkedInSchedule previousActionsAt")).sort((a, b) => a - b);
  if (history.length === 0) return new Date(nowMs);

  let t = Math.max(nowMs, history[history.length - 1] + linkedInGapMs(seed));
  // Rolling hour: while 8 or more earlier actions sit in (t − 1h, t], wait until the oldest of the
  // excess has left the window. Each pass moves t forward, so this ends.
  for (;;) {
    const inWindow = history.filter((a) => a > t - HOUR_MS && a <= t);
    if (inWindow.length < LINKEDIN_MAX_PER_HOUR) return new Date(t);
    const mustLeave = inWindow[inWindow.length - LINKEDIN_MAX_PER_HOUR];
    t = mustLeave + HOUR_MS;
  }
}

/**
 * `count` send times spread over [windowStart, windowEnd): the window is cut into equal slots and
 * each send lands at a seeded moment in its own slot. Sorted ascending. Throws RangeError when the
 * window is empty or count is not a whole number ≥ 0.
 */
export function spreadSends(count: number, windowStart: Date, windowEnd: Date, seed: string): Date[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`spreadSends: count must be a whole number ≥ 0, got ${count}`);
  const start = timeOf(windowStart, "spreadSends windowStart");
  const end = timeOf(windowEnd, "spreadSends windowEnd");
  if (end <= start) throw new RangeError("spreadSends: the window must end after it starts");
  const slot = (end - start) / count;
  const out: Date[] = [];
  for (let i = 0; i < count; i++) {
    const slotStart = start + i * slot;
    // floor keeps each send inside its slot and the last one before windowEnd.
    const offset = Math.floor(seedFraction(`spread:${seed}:${i}`) * slot);
    out.push(new Date(Math.min(end - 1, Math.floor(slotStart) + offset)));
  }
  return out;
}
