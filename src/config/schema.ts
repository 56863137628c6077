import { z } from "zod";

/**
 * experiment_config.yaml. Every field carries a description: the README's configuration
 * reference is generated from this schema (and a test keeps the two in step).
 */
export const configSchema = z.strictObject({
  benchmark: z
    .enum(["example", "local", "command"])
    .describe(
      "Which benchmark adapter runs the tasks: the built-in `example`, your own `local` TypeScript tasks, or an external `command`.",
    ),
  agent_model: z
    .string()
    .min(1)
    .default("claude-sonnet-4-5")
    .describe("Model the agent under optimization calls; handed to the agent through its context, never hard-coded."),
  coding_model: z
    .string()
    .min(1)
    .default("claude-opus-4-1")
    .describe("Model of the coding agent that analyzes failures and edits agent/agent.ts."),
  split: z.literal("train").default("train").describe("Split the loop benchmarks and the coding agent may read."),
  gate_split: z
    .literal("test")
    .default("test")
    .describe("Split the gate scores; its traces are never written anywhere."),
  max_concurrency: z.int().min(1).max(256).default(4).describe("Tasks run at the same time."),
  threshold: z
    .number()
    .min(0)
    .max(1)
    .default(0.8)
    .describe("Pass rate the regression suite must reach (a task passes at reward ≥ 0.5)."),
  patience: z
    .int()
    .min(1)
    .default(5)
    .describe("Stop after this many consecutive iterations without a new best val_score."),
  max_iterations: z.int().min(1).nullable().default(null).describe("Stop after this many iterations (null: no limit)."),
  budget_usd: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe("Stop before the money spent on LLM calls passes this (null: no limit)."),
  deadline: z.iso
    .datetime({ offset: true })
    .nullable()
    .default(null)
    .describe("ISO-8601 time after which no new iteration starts, e.g. 2026-11-25T07:00:00Z (null: none)."),
  per_task_timeout: z
    .number()
    .positive()
    .max(86_400)
    .default(300)
    .describe("Seconds one task may run before it is killed and scored."),
  seed: z.int().default(42).describe("Seed of the train/test split."),
  step_attempts: z.int().min(1).max(10).default(3).describe("Times a failing step is tried before the run fails."),
  local: z
    .strictObject({
      tasks: z.string().min(1).describe("JSONL file of tasks, one object with an `id` per line."),
      scorer: z.string().min(1).describe("TypeScript module whose default export scores a task's result."),
    })
    .optional()
    .describe("Settings of the `local` adapter."),
  command: z
    .strictObject({
      run: z.string().min(1).describe("Shell command that runs the benchmark (see the command adapter contract)."),
      timeout: z.number().positive().default(3600).describe("Seconds one invocation may take."),
    })
    .optional()
    .describe("Settings of the `command` adapter."),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
