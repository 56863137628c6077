/**
 * Time is injected so deadlines, backoff and cooldowns can be tested without sleeping. Two clocks: the wall
 * clock (`now`) for deadlines and timestamps, which NTP may step back or forward, and the monotonic clock
 * (`monotonic`) for durations — outage windows, timeouts, backoff — which only moves forward: an NTP step back
 * during an outage once kept a run from ever pausing, and a step forward ended windows early.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch: deadlines, timestamps. */
  now(): number;
  /** Milliseconds on a clock that never steps: measure durations with it, never with `now`. */
  monotonic(): number;
  /** Waits `ms` of monotonic time. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/**
 * A clock that only moves when told to; sleeps resolve as monotonic time passes them. `advance` moves both
 * clocks (time passing); `set` and `stepWall` move the wall clock alone, as an NTP step does.
 */
export class ManualClock implements Clock {
  private wall: number;
  private mono = 0;
  private waiters: { until: number; resolve: () => void }[] = [];
  readonly sleeps: number[] = [];

  /** With `autoAdvance`, a sleep moves the clock itself, so retries and backoffs finish at once. */
  constructor(
    start = 0,
    private readonly autoAdvance = false,
  ) {
    this.wall = start;
  }
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    if (this.autoAdvance) {
      this.advance(ms);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push({ until: this.mono + ms, resolve });
      this.flush();
    });
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
    this.flush();
  }
  /** Sets the wall clock (an NTP step): no duration passes. */
  set(time: number): void {
    this.wall = time;
  }
  /** Steps the wall clock by `ms` (negative: back), as NTP does; no duration passes. */
  stepWall(ms: number): void {
    this.wall += ms;
  }
  private flush(): void {
    const due = this.waiters.filter((w) => w.until <= this.mono);
    this.waiters = this.waiters.filter((w) => w.until > this.mono);
    for (const w of due) w.resolve();
  }
}
