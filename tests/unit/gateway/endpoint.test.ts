/**
 * The loopback endpoint a `command` benchmark calls: a real child process, given the environment the harness
 * builds for it, calls the gateway with Python's standard library (a stand-in for any Python client) and sees
 * the replies, while the provider's key is nowhere in what it can read; each call is metered and attributed to
 * the run's split; closing cancels what is in flight and reports what was paid.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { textReply } from "../../../dev/llm-server/llm-server.ts";
import { providersOf } from "../../../src/config/schema.ts";
import { commandEnvironment } from "../../../src/gateway/endpoint.ts";
import { gatewayWorld, post, UPSTREAM_KEY } from "../../helpers/gateway.ts";
import { until } from "../../helpers/processes.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

/** A benchmark's model client written with nothing but the standard library. */
const PYTHON_CLIENT = `
import json, os, sys, urllib.request, urllib.error

def call(path, body, headers):
    req = urllib.request.Request(path, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

base, token = os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"]
auth = {"authorization": "Bearer " + token}
out = {}
status, text = call(base + "/chat/completions", {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}, auth)
out["chat"] = [status, json.loads(text)["choices"][0]["message"]["content"]]
status, text = call(base + "/chat/completions", {"model": "gpt-5-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}, auth)
deltas = [json.loads(l[6:]) for l in text.splitlines() if l.startswith("data: {")]
out["stream"] = [status, "".join(c["choices"][0]["delta"].get("content") or "" for c in deltas if c["choices"])]
status, text = call(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}, {"x-api-key": os.environ["ANTHROPIC_API_KEY"]})
out["messages"] = [status, json.loads(text)["content"][0]["text"]]
status, text = call(base + "/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, auth)
out["refused"] = [status, json.loads(text)["error"]["message"]]
out["holding_key"] = sorted(k for k, v in os.environ.items() if sys.argv[1] in v)
print(json.dumps(out))
`;

describe.skipIf(!haveTool("python3"))("a command's Python client through the loopback endpoint", () => {
  it("gets its replies, holds only the token, and every call is metered and attributed to the run's split", async () => {
    const world = await gatewayWorld({
      split: "test",
      server: { script: [textReply("plain"), textReply("streamed"), textReply("messages")] },
    });
    const dir = tempDir();
    const script = join(dir, "client.py");
    writeFileSync(script, PYTHON_CLIENT);
    const harnessEnv = {
      ...process.env,
      GW_OPENAI_KEY: UPSTREAM_KEY,
      GW_ANTHROPIC_KEY: UPSTREAM_KEY,
      ANTHROPIC_API_KEY: UPSTREAM_KEY,
      OPENAI_API_KEY: UPSTREAM_KEY,
      ANTHROPIC_AUTH_TOKEN: UPSTREAM_KEY,
    };
    const keyEnvs = Object.values(providersOf(world.config)).map((p) => p.api_key_env);
    const env = commandEnvironment(harnessEnv, world.endpoint, keyEnvs);
    expect(Object.values(env).filter((v) => v?.includes(UPSTREAM_KEY))).toEqual([]);
    expect(env.OPENAI_API_KEY).toBe(world.endpoint.token);
    expect(env.OPENAI_API_BASE).toBe(`${world.endpoint.url}/v1`);

    // Asynchronously: the gateway answering it runs in this process.
    const child = await promisify(execFile)("python3", [script, UPSTREAM_KEY], { env });
    expect(child.stderr).toBe("");
    const out = JSON.parse(child.stdout);
    expect(out.chat).toEqual([200, "plain"]);
    expect(out.stream).toEqual([200, "streamed"]);
    expect(out.messages).toEqual([200, "messages"]);
    expect(out.refused[0]).toBe(400);
    expect(out.refused[1]).toMatch(/gpt-4o.*not one this run may call/);
    // The key, handed to the probe on its command line only, is in none of the command's variables.
    expect(out.holding_key).toEqual([]);

    expect(world.paid.map((c) => [c.model, c.split])).toEqual([
      ["openai/gpt-5-mini", "test"],
      ["openai/gpt-5-mini", "test"],
      ["anthropic/claude-sonnet-4-6", "test"],
    ]);
    expect(world.results.map((r) => r.class)).toEqual(["ok", "ok", "ok", "agent-request"]);
  });
});

describe("the endpoint's life", () => {
  it("close cancels a call in flight, still settles its reservation, and is idempotent; then nothing listens", async () => {
    const world = await gatewayWorld({ budgetUsd: 5, server: { script: [{ ...textReply("late"), delayMs: 10_000 }] } });
    const url = world.endpoint.url;
    const pending = post(world, "/v1/chat/completions", {
      model: "gpt-5-mini",
      max_completion_tokens: 100,
      messages: [{ role: "user", content: "hi" }],
    }).catch((e: Error) => e);
    await until("the call to reserve its cost", () => world.budget.reserved() > 0, 10_000);
    const first = world.endpoint.close();
    expect(world.endpoint.close()).toBe(first);
    await first;
    expect(await pending).toBeInstanceOf(Error);
    expect(world.results.map((r) => r.class)).toEqual(["cancelled"]);
    expect(world.budget.reserved()).toBe(0);
    expect(world.budget.spent()).toBe(0);
    await expect(fetch(`${url}/v1/chat/completions`, { method: "POST" })).rejects.toThrow();
  });
});
