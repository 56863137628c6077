// Runs a TypeScript agent for bench/run_bench.py: tasks as JSON on stdin, answers as JSON on stdout.
// It loads the agent with the harness's own tsx and the Anthropic SDK (HARNESS_ROOT is the harness's directory).
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const harness = createRequire(join(process.env.HARNESS_ROOT ?? process.cwd(), "package.json"));
// tsx's ESM entry (the package resolves "tsx/esm/api" to its CommonJS build for require).
const tsx = join(harness.resolve("tsx/package.json"), "..", "dist", "esm", "api", "index.mjs");
const { tsImport } = await import(pathToFileURL(tsx).href);
const { default: Anthropic } = await import(pathToFileURL(harness.resolve("@anthropic-ai/sdk")).href);

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { agentFile, model, tasks } = JSON.parse(input);
const mod = await tsImport(pathToFileURL(agentFile).href, import.meta.url);
let agent = mod.default?.default ?? mod.default;
if (typeof agent === "function") agent = new agent();
const client = new Anthropic({ maxRetries: 2 });
const answers = {};
for (const task of tasks) {
  const notes = [];
  const ctx = {
    model,
    client,
    signal: new AbortController().signal,
    env: {},
    trace: { note: (m, d) => notes.push({ message: String(m), data: d }) },
  };
  try {
    answers[task.id] = { answer: await agent.run(task, ctx), notes };
  } catch (error) {
    const status = error?.status;
    const infra = status === undefined || status === 429 || status >= 500;
    answers[task.id] =
      infra && error?.name?.includes("Connection") ? { infra: String(error) } : { error: String(error) };
  }
}
process.stdout.write(JSON.stringify(answers));
