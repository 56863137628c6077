import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { createExampleAdapter } from "../../../src/benchmark/adapters/example.ts";
import { allNonTransient, describeClasses } from "../../../src/benchmark/failure.ts";
import { createRunner } from "../../../src/benchmark/runner.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { errorHandling, type HarnessError } from "../../../src/errors.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { Capture } from "../../helpers/capture.ts";
import { sandboxHere } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

describe("the classes of a run's infrastructure errors", () => {
  it("counts classes most frequent first, and knows a refused key from an outage", () => {
    const counts = new Map([
      ["timeout", 2],
      ["HTTP 401", 48],
    ]);
    expect(describeClasses(counts)).toBe("48 HTTP 401, 2 timeout");
    expect(allNonTransient(counts)).toBe(false);
    expect(allNonTransient(new Map([["HTTP 401", 4]]))).toBe(true);
    expect(allNonTransient(new Map())).toBe(false);
  });
});

let server: TestLlmServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function runTestSplit(baseURL: string, apiKey: string) {
  const root = tempDir();
  mkdirSync(join(root, "agent"));
  writeFileSync(join(root, "agent", "agent.ts"), readFileSync("agent/templates/example.ts"));
  const journal = Journal.open(paths(root).journal);
  const logged = new Capture();
  const { log } = createLogger({ stdout: false, stream: logged });
  const runner = createRunner({
    root,
    config: configSchema.parse({ benchmark: "example", max_concurrency: 4, ...sandboxHere() }),
    journal,
    log,
    adapter: createExampleAdapter(),
    agentBaseURL: baseURL,
    agentApiKey: apiKey,
    agentMaxRetries: 0,
    typeCheck: false,
  });
  const ids = (await runner.listTasks()).slice(0, 4);
  const error = await runner.run({ split: "test", taskIds: ids, runId: null }).then(
    () => null,
    (e: unknown) => e as HarnessError,
  );
  journal.close();
  return { error, log: logged.text };
}

describe("a benchmark whose tasks cannot run says why, without task content", () => {
  it("a refused key: the HTTP status in the message and the log, and a failure that does not wait", async () => {
    server = await startTestLlmServer({ apiKey: "the-right-key" });
    const { error, log } = await runTestSplit(server.url, "a-wrong-key");
    expect(error?.code).toBe("LLM_REJECTED");
    expect(error?.message).toMatch(/^4 of 4 test tasks could not run \(infrastructure errors: 4 HTTP 401; limit 50%\)/);
    expect(error?.message).toMatch(/check ANTHROPIC_API_KEY/);
    expect(log).toMatch(/"infraClasses":\{"HTTP 401":4\}/);
  });

  it("no server: connection refused, an infrastructure failure that pauses the run", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const { port } = srv.address() as { port: number };
    await new Promise((r) => srv.close(r));
    const { error } = await runTestSplit(`http://127.0.0.1:${port}`, "k");
    expect(error?.code).toBe("INFRA_FAILURE");
    expect(errorHandling(error)).toBe("resumable");
    expect(error?.message).toMatch(/infrastructure errors: 4 connection refused;/);
  });
});
