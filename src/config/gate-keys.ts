/** The paired gate's keys of experiment_config.yaml (./schema.ts spreads them in, in this order). */
import { z } from "zod";

export const pairedGateKeys = {
  gate_night_budget: z
    .number()
    .gt(0)
    .max(1)
    .default(0.1)
    .describe(
      "`paired`: the expected number of accepted edits per run that truly change nothing or harm, which the operator tolerates (0.1: one such acceptance in ten nights). Each round spends a share of it; more rounds or more candidates never raise it.",
    ),
  gate_bank_slack: z
    .number()
    .min(0)
    .default(3)
    .describe(
      "`paired`: how far, in passes over the held-out split, a run's held-out runs may get ahead of the original's one pass per iteration (rounds that stop early leave their runs to those that need them).",
    ),
  gate_round_runs: z
    .number()
    .positive()
    .default(4)
    .describe(
      "`paired`: most held-out runs one round may spend, in passes over the held-out split per raced candidate and incumbent pair.",
    ),
  gate_guard: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.95)
    .describe(
      "`paired`: besides the paired evidence, accept only when the posterior probability that the mean improved is at least this.",
    ),
  gate_screen: z
    .number()
    .min(0)
    .lt(1)
    .default(0.2)
    .describe(
      "`paired`: a candidate whose train run leaves the probability that the mean improved below this stops there, before any held-out run (train may stop a candidate, never accept one).",
    ),
  gate_race_passes: z
    .number()
    .min(0)
    .default(2)
    .describe(
      "`paired`, several candidates: of the train screen's survivors, only as many race (at most `gate_race_width`) as the round's held-out runs pay for at this many passes over the held-out split per arm, the incumbent's included (the best by their paired train difference first; none when not even one can, and the runs stay in the night's bank); a race the runs cannot finish would decide nothing. 0: race every survivor.",
    ),
  gate_race_width: z
    .int()
    .min(0)
    .default(1)
    .describe(
      "`paired`, several candidates: the most train survivors one round races on the held-out split, the best by their paired train difference first; the others stop at the screen. 0: as many as the round's held-out runs pay for.",
    ),
};
