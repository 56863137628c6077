/** Time is injected so deadlines, backoff and cooldowns can be tested without sleeping. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
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

/** A clock that only moves when told to; sleeps resolve as time passes them. */
export class ManualClock implements Clock {
  private current: number;
  private waiters: { until: number; resolve: () => void }[] = [];
  readonly sleeps: number[] = [];

  /** With `autoAdvance`, a sleep moves the clock itself, so retries and backoffs finish at once. */
  constructor(
    start = 0,
    private readonly autoAdvance = false,
  ) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    if (this.autoAdvance) {
      this.advance(ms);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push({ until: this.current + ms, resolve });
      this.flush();
    });
  }
  advance(ms: number): void {
    this.current += ms;
    this.flush();
  }
  set(time: number): void {
    this.current = time;
    this.flush();
  }
  private flush(): void {
    const due = this.waiters.filter((w) => w.until <= this.current);
    this.waiters = this.waiters.filter((w) => w.until > this.current);
    for (const w of due) w.resolve();
  }
}
