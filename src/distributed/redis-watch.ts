/** The daemon's watch on Redis: an outage past its limit ends every wait of a batch with a resumable failure. */
import type { Clock } from "../clock.ts";
import { EXIT_RESUMABLE, HarnessError } from "../errors.ts";
import type { connect } from "./queue.ts";

export interface RedisWatch {
  failure(): HarnessError | null;
  until<T>(p: Promise<T>): Promise<T>;
  stop(): void;
}

/**
 * Pings Redis every second (one ping at a time, each bounded): a Redis that is down, or up but not answering,
 * for `outageMs` of monotonic time is an outage, reported once through `onOutage`.
 */
export function watchRedis(
  redis: ReturnType<typeof connect>,
  o: { outageMs: number; clock: Clock; onOutage(error: HarnessError): void; describe(ms: number): string },
): RedisWatch {
  let downSince: number | null = null;
  let failure: HarnessError | null = null;
  let pinging = false;
  let fail: (error: HarnessError) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  const timer = setInterval(() => {
    if (pinging || failure) return;
    pinging = true;
    const bounded = new Promise((_, reject) => setTimeout(() => reject(new Error("no answer")), 2_000).unref());
    Promise.race([redis.ping(), bounded])
      .then(
        () => {
          downSince = null;
        },
        () => {
          const now = o.clock.monotonic();
          downSince ??= now;
          if (now - downSince < o.outageMs) return;
          failure = new HarnessError("INFRA_FAILURE", o.describe(now - downSince), { exitCode: EXIT_RESUMABLE });
          fail(failure);
          o.onOutage(failure);
        },
      )
      .finally(() => {
        pinging = false;
      });
  }, 1_000);
  timer.unref();
  return {
    failure: () => failure,
    // A wait that Redis alone can end (the queue getting ready) ends with the outage too.
    until: (p) => Promise.race([p, failed]),
    stop: () => clearInterval(timer),
  };
}
