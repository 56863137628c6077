import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { apiKeyCheck } from "../../../src/cli/preflight.ts";
import { main } from "../../../src/cli/program.ts";
import { validateConfig } from "../../../src/config/load.ts";
import { Capture } from "../../helpers/capture.ts";
import { tempDir } from "../../helpers/temp.ts";

describe("config validation", () => {
  it("accepts a minimal config and fills the defaults", () => {
    const { config, errors } = validateConfig({ benchmark: "example" });
    expect(errors).toEqual([]);
    expect(config).toMatchObject({
      patience: 5,
      threshold: 0.8,
      split: "train",
      gate_split: "test",
      max_iterations: null,
    });
  });

  it.each([
    [
      "unknown key with a hint",
      { benchmark: "example", max_concurency: 4 },
      /^max_concurency: unknown key \(did you mean "max_concurrency"\?\)$/,
    ],
    [
      "unknown key, no close match",
      { benchmark: "example", colour: "red" },
      /^colour: unknown key; remove it \(known keys: benchmark, /,
    ],
    [
      "wrong type",
      { benchmark: "example", max_concurrency: "four" },
      /^max_concurrency: got "four"; Invalid input: expected number, received string$/,
    ],
    [
      "out of range",
      { benchmark: "example", threshold: 1.5 },
      /^threshold: got 1\.5; Too big: expected number to be <=1$/,
    ],
    ["zero patience", { benchmark: "example", patience: 0 }, /^patience: got 0; Too small/],
    ["not an integer", { benchmark: "example", max_iterations: 2.5 }, /^max_iterations: got 2\.5;/],
    [
      "bad deadline",
      { benchmark: "example", deadline: "tomorrow morning" },
      /^deadline: got "tomorrow morning"; Invalid ISO datetime$/,
    ],
    [
      "bad enum",
      { benchmark: "tau" },
      /^benchmark: got "tau"; Invalid option: expected one of "example"\|"local"\|"command"$/,
    ],
    ["missing benchmark", {}, /^benchmark: got nothing;/],
    [
      "unknown executor",
      { benchmark: "example", executor: "celery" },
      /^executor: got "celery"; Invalid option: expected one of "local"\|"bullmq"$/,
    ],
    [
      "redis_url not a redis URL",
      { benchmark: "example", executor: "bullmq", redis_url: "http://queue:6379" },
      /^redis_url: got "http:\/\/queue:6379"; expected a redis:\/\/ or rediss:\/\/ URL/,
    ],
    [
      "bullmq without redis_url",
      { benchmark: "example", executor: "bullmq" },
      /^redis_url: got nothing; executor `bullmq` needs `redis_url: redis:\/\/<host>:<port>`$/,
    ],
    [
      "nested unknown key",
      { benchmark: "local", local: { tasks: "t.jsonl", scorer: "s.ts", extra: 1 } },
      /^local\.extra: unknown key/,
    ],
    ["local without its section", { benchmark: "local" }, /^local: got nothing; benchmark `local` needs/],
    ["command without its section", { benchmark: "command" }, /^command: got nothing; benchmark `command` needs/],
    ["negative budget", { benchmark: "example", budget_usd: -1 }, /^budget_usd: got -1; Too small/],
    ["not a mapping", ["benchmark"], /^\(top level\): got \["benchmark"\]; expected a mapping/],
  ])("%s", (_name, raw, expected) => {
    const { config, errors } = validateConfig(raw);
    expect(config).toBeNull();
    expect(
      errors.some((e) => expected.test(e)),
      errors.join("\n"),
    ).toBe(true);
  });

  it("reports every problem at once", () => {
    const { errors } = validateConfig({ benchmark: "x", threshold: 9, patience: "a", typo_key: 1 });
    expect(errors).toHaveLength(4);
  });
});

describe("a bad config through the CLI", () => {
  it.each([["run"], ["prepare"], ["gate"], ["benchmark"]])(
    "%s exits 2 naming the key, and writes nothing",
    async (command) => {
      const dir = tempDir();
      writeFileSync(join(dir, "experiment_config.yaml"), "benchmark: example\nthreshold: 3\n");
      const before = readdirSync(dir);
      const out = new Capture();
      const err = new Capture();
      const code = await main(["node", "auto-harness", command, "--dir", dir], { stdout: out, stderr: err });
      expect(code).toBe(2);
      expect(err.text).toMatch(/threshold: got 3; Too big: expected number to be <=1/);
      expect(readdirSync(dir)).toEqual(before);
      expect(existsSync(join(dir, "workspace"))).toBe(false);
    },
  );

  it("a missing config file exits 2 with the fix", async () => {
    const dir = tempDir();
    const err = new Capture();
    const code = await main(["node", "auto-harness", "run", "--dir", dir], { stdout: new Capture(), stderr: err });
    expect(code).toBe(2);
    expect(err.text).toMatch(/experiment_config\.yaml: 1 problem\(s\)\n {2}file not found; create it/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("invalid YAML exits 2 with the line", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "experiment_config.yaml"), "benchmark: example\n  bad: [indent\n");
    const err = new Capture();
    expect(await main(["node", "auto-harness", "run", "--dir", dir], { stdout: new Capture(), stderr: err })).toBe(2);
    expect(err.text).toMatch(/line \d+: not valid YAML/);
  });

  it("an unknown command or option exits 2", async () => {
    const err = new Capture();
    expect(await main(["node", "auto-harness", "frobnicate"], { stdout: new Capture(), stderr: err })).toBe(2);
    expect(err.text).toMatch(/unknown command 'frobnicate'/);
    expect(
      await main(["node", "auto-harness", "status", "--nope"], { stdout: new Capture(), stderr: new Capture() }),
    ).toBe(2);
  });
});

describe("the API key check", () => {
  it.each([
    [{ ANTHROPIC_API_KEY: "sk-ant-x" }, true],
    [{ ANTHROPIC_BASE_URL: "http://127.0.0.1:4000" }, true],
    [{ ANTHROPIC_BASE_URL: "http://localhost:4000/v1" }, true],
    [{ ANTHROPIC_BASE_URL: "https://api.example.com" }, false],
    [{}, false],
  ])("%j passes: %s", (env, ok) => {
    const problem = apiKeyCheck.check({ env } as never);
    if (ok) expect(problem).toBeNull();
    else expect(problem).toMatch(/ANTHROPIC_API_KEY is not set; export it/);
  });
});
