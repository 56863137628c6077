/**
 * The plateau rule, pure: from the night's own rounds, what the next acceptance is forecast to cost on the
 * proposer's current angle, and whether to change the angle (a fresh analysis without the learnings'
 * anchoring, the next failure pattern, the next coding model). Gains come early and then plateau; a search
 * restarted from the best with a fresh angle kept climbing where the same search stalled.
 */

export interface RoundRecord {
  accepted: boolean;
  /** Dollars and milliseconds the round took. */
  costUsd: number;
  durationMs: number;
  /** The round was the first of a changed angle. */
  restart: boolean;
}

export interface PlateauParams {
  /** Rounds without an acceptance on one angle that make a plateau. */
  rounds: number;
  /** The acceptance rate's prior, as pseudo-rounds: `priorAccepts` of `priorRounds` accepted. */
  priorAccepts: number;
  priorRounds: number;
  /** Rounds the cost per round is averaged over (the latest). */
  window: number;
}

export const DEFAULT_PLATEAU: PlateauParams = { rounds: 4, priorAccepts: 1, priorRounds: 4, window: 6 };

export interface Forecast {
  /** Rounds on the current angle since it began, and since its last acceptance. */
  angleRounds: number;
  sinceAccept: number;
  /** Acceptances per round expected on this angle (the prior shrunk toward what it has shown). */
  acceptRate: number;
  /** Expected rounds, dollars and milliseconds until the next acceptance. */
  rounds: number;
  usd: number;
  ms: number;
}

export interface PlateauVerdict {
  restart: boolean;
  reason: string;
  forecast: Forecast;
}

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * The forecast on the current angle: its rounds are those since the last restart. The rate is a beta
 * posterior mean over them, so a young angle is judged mostly by the prior, an old one by its record.
 */
export function forecast(history: readonly RoundRecord[], p: PlateauParams = DEFAULT_PLATEAU): Forecast {
  const lastRestart = history.findLastIndex((r) => r.restart);
  const angle = history.slice(Math.max(0, lastRestart));
  const lastAccept = angle.findLastIndex((r) => r.accepted);
  const accepts = angle.filter((r) => r.accepted).length;
  const acceptRate = (accepts + p.priorAccepts) / (angle.length + p.priorRounds);
  const recent = history.slice(-p.window);
  const rounds = 1 / acceptRate;
  return {
    angleRounds: angle.length,
    sinceAccept: angle.length - 1 - lastAccept,
    acceptRate,
    rounds,
    usd: rounds * mean(recent.map((r) => r.costUsd)),
    ms: rounds * mean(recent.map((r) => r.durationMs)),
  };
}

/**
 * Whether the next round changes the angle: after `rounds` rounds on it with no acceptance, or when the
 * next acceptance is forecast to cost more than the night has left (in dollars or time) once the angle has
 * had half that many rounds. `left` holds null for a limit the night does not have.
 */
export function plateauVerdict(
  history: readonly RoundRecord[],
  left: { usd: number | null; ms: number | null },
  p: PlateauParams = DEFAULT_PLATEAU,
): PlateauVerdict {
  const f = forecast(history, p);
  const cost = `next acceptance forecast in ${f.rounds.toFixed(1)} rounds, $${f.usd.toFixed(2)}, ${(f.ms / 60_000).toFixed(0)} min`;
  if (f.sinceAccept >= p.rounds) {
    return {
      restart: true,
      reason: `plateau: ${f.sinceAccept} rounds on this angle without an acceptance; ${cost}`,
      forecast: f,
    };
  }
  const young = f.sinceAccept < Math.ceil(p.rounds / 2);
  const overMoney = left.usd !== null && f.usd > left.usd;
  const overTime = left.ms !== null && f.ms > left.ms;
  if (!young && (overMoney || overTime)) {
    const what = overMoney ? `$${(left.usd ?? 0).toFixed(2)}` : `${((left.ms ?? 0) / 60_000).toFixed(0)} min`;
    return { restart: true, reason: `plateau: ${cost}, more than the night has left (${what})`, forecast: f };
  }
  return { restart: false, reason: cost, forecast: f };
}
