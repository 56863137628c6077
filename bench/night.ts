/**
 * `npm run bench:night -- [--nights 8] [--seed0 0] [--policies original,k1,k2,k4,k8,k1-restart,...] [--quick]
 *   [--hours 8] [--budget 300] [--fix 0.05] [--night-budget 0.1] [--slack 3] [--bank screens|rounds]`
 *
 * The loop in a simulated night: the real machine and daemon, a real journal on a SQLite file, the gate
 * rules as shipped, on simulated time; the runner and the coding model are simulated with known truth
 * (bench/night-world.ts). Per policy, over the same nights: the true gain of the morning's agent, accepted
 * edits that were truly no-change, harmful or train-only, dollars, held-out runs, dollars per true point,
 * and the sealed holdout's estimate against the truth. Figures, not pass/fail. `--quick`: 2 nights of 2 h.
 *
 * The held-out runs are the night's scarce resource, so a wider round must not pay for its train screens in
 * them: the bank credits a round of K candidates with the share of a round of one its extra screens took
 * (`--bank screens`, the product's rule; src/gate/rules/budget.ts). `--bank rounds`: one pass per round, as
 * before, where a round of four (17 a night against 29) earned the held-out runs of a round of one.
 */
import { pairedBench } from "./gate-paired.ts";
import { type NightFigures, simulateNight } from "./night-run.ts";
import type { Policy } from "./night-steps.ts";
import { WORLD, type WorldParams } from "./night-world.ts";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/**
 * Policies by name: `original`, `k<K>` (paired, K candidates; of the survivors the round's held-out allowance
 * can pay for, the best on train races), `k<K>-w<W>` (at most W raced), `k<K>-all` (every survivor raced),
 * each optionally with `-restart` (the plateau restart).
 */
export function policyOf(name: string): Policy | null {
  const m = /^(original|k([1-9]\d?)(-all|-w([1-9]))?)(-restart)?$/.exec(name);
  if (!m) return null;
  const original = m[1] === "original";
  return {
    name,
    rule: original ? "original" : "paired",
    k: original ? 1 : Number(m[2]),
    restart: m[5] !== undefined,
    raceAll: m[3] === "-all",
    ...(m[4] === undefined ? {} : { raceWidth: Number(m[4]) }),
  };
}

export interface PolicyFigures {
  policy: string;
  nights: NightFigures[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sd = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

export async function benchNight(o: {
  policies: Policy[];
  nights: number;
  seed0: number;
  params: WorldParams;
  onNight?: (policy: string, seed: number, f: NightFigures) => void;
}): Promise<PolicyFigures[]> {
  const out: PolicyFigures[] = [];
  for (const policy of o.policies) {
    const nights: NightFigures[] = [];
    for (let s = o.seed0; s < o.seed0 + o.nights; s++) {
      const f = await simulateNight(policy, o.params, s);
      o.onNight?.(policy.name, s, f);
      nights.push(f);
    }
    out.push({ policy: policy.name, nights });
  }
  return out;
}

export function tableOf(figures: PolicyFigures[]): string[] {
  const lines = [
    "| policy | true gain (pts) | real improvements accepted / proposed | accepted | no-change / harmful / train-only accepted | dollars | $ per true point | held-out runs | rounds | restarts | holdout estimate − truth (pts) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const { policy, nights } of figures) {
    const g = nights.map((n) => n.gain);
    const usd = nights.map((n) => n.usd);
    const err = nights.flatMap((n) => (n.holdoutError === null ? [] : [n.holdoutError]));
    const perPoint = mean(g) > 0 ? `${(mean(usd) / mean(g)).toFixed(1)}` : "n/a (no gain)";
    const bad = (k: "noChange" | "harmful" | "trainOnly") => mean(nights.map((n) => n[k])).toFixed(2);
    lines.push(
      `| ${policy} | ${mean(g) >= 0 ? "+" : ""}${mean(g).toFixed(1)} ±${sd(g).toFixed(1)} | ${mean(nights.map((n) => n.accepted - n.noChange - n.harmful - n.trainOnly)).toFixed(1)} / ${mean(nights.map((n) => n.realProposed)).toFixed(1)} | ${mean(nights.map((n) => n.accepted)).toFixed(1)} | ${bad("noChange")} / ${bad("harmful")} / ${bad("trainOnly")} | ${mean(usd).toFixed(0)} ±${sd(usd).toFixed(0)} | ${perPoint} | ${mean(nights.map((n) => n.heldOutRuns)).toFixed(0)} | ${mean(nights.map((n) => n.rounds)).toFixed(1)} | ${mean(nights.map((n) => n.restarts)).toFixed(1)} | ${mean(err) >= 0 ? "+" : ""}${mean(err).toFixed(1)} (mean abs ${mean(err.map(Math.abs)).toFixed(1)}) |`,
    );
  }
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes("--quick");
  const names = flag("policies", "original,k1,k2,k4,k8,k1-restart,k2-restart,k4-restart").split(",");
  const policies = names.map(policyOf);
  const unknown = names.filter((_, i) => policies[i] === null);
  const nights = Number(flag("nights", quick ? "2" : "8"));
  const hours = Number(flag("hours", quick ? "2" : String(WORLD.hours)));
  const budget = Number(flag("budget", String(WORLD.budgetUsd)));
  const seed0 = Number(flag("seed0", "0"));
  const fixSize = Number(flag("fix", String(WORLD.fixSize)));
  const nightBudget = Number(flag("night-budget", String(pairedBench.nightBudget)));
  const slack = Number(flag("slack", String(pairedBench.bankSlack)));
  const bank = flag("bank", "screens");
  const bad =
    unknown.length > 0
      ? `--policies: unknown policy ${unknown.join(", ")}; use original, k1..k99 or k2-all..k99-all, each optionally with -restart (e.g. k4-restart)`
      : !(Number.isInteger(nights) && nights > 0)
        ? "--nights: a whole number of nights above 0, e.g. --nights 8"
        : !(hours > 0 && budget > 0 && fixSize > 0 && fixSize < 1 && Number.isInteger(seed0))
          ? "--hours, --budget: numbers above 0; --fix: a share of the mean reward in (0, 1); --seed0 a whole number; e.g. --hours 8 --budget 300 --fix 0.05"
          : !(nightBudget > 0 && nightBudget <= 1 && slack >= 0)
            ? "--night-budget: the night's error budget in (0, 1] (gate_night_budget), --slack: 0 or more (gate_bank_slack)"
            : bank !== "screens" && bank !== "rounds"
              ? "--bank: screens (a wide round's extra train screens earn held-out runs, as the product does) or rounds (one pass per round)"
              : null;
  if (bad) {
    process.stderr.write(`${bad}\n`);
    process.exit(2);
  }
  pairedBench.nightBudget = nightBudget;
  pairedBench.bankSlack = slack;
  const params: WorldParams = { ...WORLD, hours, budgetUsd: budget, fixSize };
  const p = params;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(
    `simulated nights: ${hours} h and $${budget} each, seeds ${seed0}..${seed0 + nights - 1}; ${p.kind} rewards, ${p.mix} pass-rate mix; ${p.trainTasks} train, ${p.heldOutTasks} held-out and ${p.holdoutTasks} sealed tasks in ${p.clusters} failure patterns`,
  );
  out(
    `coding model: ${p.editMix.map(([k, w]) => `${k} ${Math.round(w * 100)}%`).join(", ")}; a fix +${(p.fixSize * 100).toFixed(1)} pts on its pattern (while the pattern has failing tasks); anchored analysis keeps the last fixed pattern ${Math.round(p.anchor * 100)}% of the time`,
  );
  out(
    `latencies and prices: task run ${p.taskMs / 1000} s and $${p.taskUsd}, ${p.concurrency} at once; analysis ${p.analyzeMs / 60_000} min and $${p.analyzeUsd}; coding session ${p.sessionMs[0] / 60_000}–${p.sessionMs[1] / 60_000} min and $${p.sessionUsd}`,
  );
  out(
    `paired gate: night's error budget ${nightBudget}, held-out bank slack ${slack} passes, a round's cap ${pairedBench.perGate} passes per pair`,
  );
  const started = Date.now();
  pairedBench.bank = bank as "screens" | "rounds";
  out(
    `held-out bank: ${bank === "screens" ? "one pass per round, plus the share of a round a wide round's extra train screens took" : "one pass per round"}`,
  );
  const figures = await benchNight({ policies: policies as Policy[], nights, seed0, params });
  out("");
  for (const line of tableOf(figures)) out(line);
  out(`\ntook ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
