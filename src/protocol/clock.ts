/**
 * Injectable time source for the Channel (and anything else with timeouts), so tests can drive
 * time deterministically with ManualClock instead of real timers.
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** performance.now() and the host's setTimeout/clearTimeout. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * A clock that only moves when told: `advance(ms)` runs every timer due on the way, in due-time
 * order (ties in creation order), with `now()` set to each timer's due time while it runs.
 */
export class ManualClock implements Clock {
  private t: number;
  private nextId = 1;
  private timers = new Map<number, { due: number; fn: () => void }>();

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.set(id, { due: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Number of timers still scheduled. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers (including ones they schedule) in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let bestId = -1;
      let bestDue = Infinity;
      for (const [id, tm] of this.timers) {
        if (tm.due <= end && (tm.due < bestDue || (tm.due === bestDue && id < bestId))) {
          bestId = id;
          bestDue = tm.due;
        }
      }
      if (bestId < 0) break;
      const tm = this.timers.get(bestId)!;
      this.timers.delete(bestId);
      this.t = Math.max(this.t, tm.due);
      tm.fn();
    }
    this.t = end;
  }
}
