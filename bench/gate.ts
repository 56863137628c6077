/**
 * `npm run bench:gate [seeds]`: the gate rules against simulated task outcomes with known truth (bench/gate-world.ts).
 * Figures, not pass/fail; the target at 34 tasks: false-accept ≤ 5%, true gain ≥ 1.2× the original's, at no more
 * held-out task runs than the original spends.
 */
import { evaluate, type RuleName, type Summary, type WorldOptions } from "./gate-world.ts";

const seeds = Number(process.argv[2] ?? 400);
const started = Date.now();
const out = (s: string) => process.stdout.write(`${s}\n`);

const row = (rule: string, s: Summary) =>
  `| ${rule.padEnd(8)} | ${s.falseAccept.toFixed(3)} | ${s.trueAccept.toFixed(3)} | ${
    Number.isNaN(s.harmfulAccept) ? "  n/a" : s.harmfulAccept.toFixed(3)
  } | ${s.gain >= 0 ? "+" : ""}${s.gain.toFixed(3)} ±${s.gainSe.toFixed(3)} | ${s.testRuns.toFixed(0).padStart(6)} |`;

out(
  `gate rules, ${seeds} seeded runs of 30 iterations each; edits 20% good (+5pt), 50% neutral, 30% harmful (-3..-8pt)`,
);
for (const n of [34, 50, 100]) {
  const o: WorldOptions = { n, iterations: 30, good: 0.2, harmful: 0.3 };
  out(`\n${n} held-out tasks`);
  out("| rule     | false-accept | true-accept | harmful-accept | true gain | held-out runs |");
  out("|---|---|---|---|---|---|");
  const res = {} as Record<RuleName, Summary>;
  for (const rule of ["original", "bayes"] as const) {
    res[rule] = evaluate(rule, seeds, o);
    out(row(rule, res[rule]));
  }
  const ratio = res.bayes.gain / res.original.gain;
  out(
    `bayes vs original: gain ${ratio.toFixed(2)}x, held-out runs ${(res.bayes.testRuns / res.original.testRuns).toFixed(2)}x`,
  );
}
out(`\ntook ${((Date.now() - started) / 1000).toFixed(1)} s`);
