/** `npm run bench`: figures, not pass/fail. Speed and memory live here, never in the tests. */
import { benchOrchestrator } from "./orchestrator.ts";
import { benchRunner } from "./runner.ts";

const print = (title: string, figures: Record<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`  ${k.padEnd(32)} ${v}\n`);
};

print("orchestrator (zero-cost steps, synchronous = FULL)", await benchOrchestrator());
// 50 ms is the goal's figure; real replies take seconds, where the child's fixed start-up matters less.
print("runner (200 tasks, 50 ms replies, concurrency 16)", await benchRunner(50));
print("runner (200 tasks, 500 ms replies, concurrency 16)", await benchRunner(500));
