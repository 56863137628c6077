/**
 * Simulated time for bench:night. A discrete-event clock: virtual time moves only when every simulated actor
 * is asleep on it, so a 4-minute coding session or a 30-second task costs nothing in wall time, and work
 * that overlaps in the simulated night (K coding sessions, task runs sharing the pool) overlaps here too.
 */
import type { Clock } from "../src/clock.ts";

interface Waiter {
  until: number;
  seq: number;
  resolve: () => void;
}

/**
 * "Every actor is asleep" is read from the event loop: the simulated actors do synchronous work (SQLite)
 * and promise hops only, so once the loop has turned twice with no new sleep, nothing else can run before
 * the earliest waiter is due. Real asynchronous work (a child process, a file stream) would break that
 * reading; such work must hold the clock (`hold`) until it ends.
 */
export class SimClock implements Clock {
  private current: number;
  private waiters: Waiter[] = [];
  private seq = 0;
  private holds = 0;
  private scheduled = false;
  private quietTurns = 0;
  private lastSeq = -1;

  constructor(start: number) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** Simulated time never steps back: the wall clock and the monotonic one are the same here. */
  monotonic(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        until: this.current + Math.max(0, ms),
        seq: this.seq++,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.schedule();
    });
  }

  /** Real asynchronous work in flight: time stands still until the returned release is called. */
  hold(): () => void {
    this.holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.schedule();
    };
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.tick());
  }

  private tick(): void {
    this.scheduled = false;
    if (this.waiters.length === 0 || this.holds > 0) return;
    // A sleep registered since the last turn means something was still running: wait for two quiet turns.
    if (this.seq !== this.lastSeq) {
      this.lastSeq = this.seq;
      this.quietTurns = 0;
    }
    if (this.quietTurns < 2) {
      this.quietTurns += 1;
      this.schedule();
      return;
    }
    this.quietTurns = 0;
    const next = Math.min(...this.waiters.map((w) => w.until));
    this.current = Math.max(this.current, next);
    const due = this.waiters.filter((w) => w.until <= this.current).sort((a, b) => a.seq - b.seq);
    this.waiters = this.waiters.filter((w) => w.until > this.current);
    for (const w of due) w.resolve();
    if (this.waiters.length > 0) this.schedule();
  }
}

/**
 * The runner's concurrency (`max_concurrency`) on simulated time: a run takes a slot, holds it for its
 * latency, and gives it back; runs beyond the limit queue in the order they asked.
 */
export class SimPool {
  private busy = 0;
  private queue: (() => void)[] = [];

  constructor(
    private readonly clock: SimClock,
    readonly slots: number,
  ) {}

  async run<T>(latencyMs: number, work: () => T, signal?: AbortSignal): Promise<T> {
    if (this.busy >= this.slots) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.busy += 1;
    try {
      await this.clock.sleep(latencyMs, signal);
      return work();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.busy -= 1;
    }
  }
}
