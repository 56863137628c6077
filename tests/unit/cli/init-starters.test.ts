/**
 * `init --benchmark harbor | tau2`: the starters for the two ready-made wrappers, through the real CLI on real
 * files. Neither tool is installed here, so the agents run against small stand-ins of the modules they import
 * (Harbor's BaseAgent, LiteLLM, tau2's LLMAgent and generate) that record what the agent asked of them.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.ts";
import { cli } from "../../helpers/cli.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

async function init(benchmark: string, provider: string): Promise<string> {
  const dir = join(tempDir(`starter-${benchmark}-`), "exp");
  const r = await cli(["init", "--benchmark", benchmark, "--provider", provider, "--dir", dir]);
  expect(r.code, r.err).toBe(0);
  return dir;
}

const python = (args: string[], env: Record<string, string> = {}, cwd?: string) =>
  spawnSync("python3", args, { encoding: "utf8", env: { ...process.env, ...env }, ...(cwd ? { cwd } : {}) });

/** Files under dir with their contents: "nothing written" compares two of these. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const f = join(d, e.name);
      if (e.isDirectory()) walk(f);
      else out[f.slice(dir.length)] = readFileSync(f, "latin1");
    }
  };
  walk(dir);
  return out;
}

const starters = [
  ["harbor", "anthropic", "claude-sonnet-4-6", "uv tool install harbor"],
  ["harbor", "openai", "openai/gpt-5-mini", "uv tool install harbor"],
  ["tau2", "anthropic", "claude-sonnet-4-6", "pip install -e tau2-bench"],
  ["tau2", "openai", "openai/gpt-5-mini", "pip install -e tau2-bench"],
] as const;

describe.skipIf(!haveTool("python3"))("init --benchmark harbor | tau2", () => {
  it.each(starters)(
    "--benchmark %s --provider %s: a starter that compiles, loads and names its wrapper",
    async (benchmark, provider, model, install) => {
      const dir = await init(benchmark, provider);
      const compiled = python(["-m", "py_compile", join(dir, "agent", "agent.py")]);
      expect(compiled.status, compiled.stderr).toBe(0);
      const agent = readFileSync(join(dir, "agent", "agent.py"), "utf8");
      expect(agent).toContain("class HarnessAgent(");
      expect(agent).toContain(`API_FORMAT = "${provider}"`);

      const config = loadConfig(join(dir, "experiment_config.yaml"));
      expect(config).toMatchObject({ benchmark: "command", agent_file: "agent/agent.py", agent_model: model });
      const [interpreter, wrapper, ...args] = (config.command?.run ?? "").split(" ");
      expect(interpreter).toBe("python3");
      expect(wrapper).toMatch(new RegExp(`/benchmarks/${benchmark}/run\\.py$`));
      expect(existsSync(wrapper!)).toBe(true);
      const help = python([wrapper!, "--help"]);
      expect(help.status, help.stderr).toBe(0);
      expect(help.stdout).toContain("usage:");
      // The wrapper accepts every option the scaffold gives it (argparse refuses an unknown one with exit 2).
      for (const flag of args.filter((a) => a.startsWith("--"))) expect(help.stdout).toContain(flag);

      const readme = readFileSync(join(dir, "README.md"), "utf8");
      expect(readme).toContain(install);
      expect(readme).toContain(provider === "openai" ? "OPENAI_BASE_URL" : "ANTHROPIC_BASE_URL");
      expect(readme).toContain("npx auto-harness prepare");
      expect(execFileSync("git", ["log", "--format=%s"], { cwd: dir, encoding: "utf8" }).trim()).toBe(
        "init: experiment scaffold",
      );
      if (benchmark === "harbor") {
        expect(args.join(" ")).toContain("--tasks-file tbench_tasks.txt");
        const names = readFileSync(join(dir, "tbench_tasks.txt"), "utf8")
          .split("\n")
          .filter((l) => l.trim() && !l.startsWith("#"));
        expect(names.length).toBeGreaterThanOrEqual(10);
        expect(new Set(names).size).toBe(names.length);
        for (const n of names) expect(n).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      } else {
        expect(args.join(" ")).toContain("--domain retail --task-split-name base");
      }
    },
  );

  it("the wrapper lists the starter's task file as the harness asks, once Harbor is there", async () => {
    const dir = await init("harbor", "anthropic");
    const bin = join(tempDir("harbor-bin-"));
    writeFileSync(join(bin, "harbor"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const results = join(dir, "..", "results.json");
    const wrapper = loadConfig(join(dir, "experiment_config.yaml")).command!.run.split(" ").slice(1);
    const r = python(
      wrapper,
      { PATH: `${bin}${delimiter}${process.env.PATH}`, HARNESS_RESULTS_FILE: results, HARNESS_LIST_ONLY: "1" },
      dir,
    );
    expect(r.status, r.stderr).toBe(0);
    const listed = Object.keys(JSON.parse(readFileSync(results, "utf8")).results);
    expect(listed).toHaveLength(20);
    expect(listed).toContain("fix-git");
  });

  it.each([
    ["harbor", "uv tool install harbor"],
    ["tau2", "-m pip install -e tau2-bench"],
  ])(
    "prepare on a %s starter without the tool: exit 2, the install command named, nothing written",
    async (benchmark, install) => {
      const dir = await init(benchmark, "anthropic");
      // No harbor on PATH (this machine has none; the filter makes sure), and tau2 is not importable here.
      process.env.PATH = (process.env.PATH ?? "")
        .split(delimiter)
        .filter((d) => !existsSync(join(d, "harbor")))
        .join(delimiter);
      process.env.ANTHROPIC_API_KEY ??= "test-key";
      if (benchmark === "tau2" && python(["-c", "import tau2.run"]).status === 0) return; // tau2 really is here
      const before = snapshot(dir);
      const r = await cli(["prepare", "--dir", dir]);
      expect(r.code).toBe(2);
      const [first, ...tail] = r.err.trimEnd().split("\n");
      expect(first).toMatch(
        /^auto-harness: the benchmark command `python3 .*run\.py .*` failed when asked for its tasks/,
      );
      expect(tail.join("\n")).toMatch(
        benchmark === "harbor" ? /\| error: Harbor is not installed/ : /\| error: tau2-bench is not installed for /,
      );
      expect(tail.join("\n")).toContain(install);
      expect(snapshot(dir)).toEqual(before);
    },
  );

  it.each([
    ["harbor", "ts"],
    ["tau2", "ts"],
  ])("--benchmark %s --language %s is refused in one line, nothing written", async (benchmark, language) => {
    const dir = join(tempDir("starter-bad-"), "exp");
    const r = await cli(["init", "--benchmark", benchmark, "--language", language, "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `auto-harness: --language must be python for --benchmark ${benchmark} (the tool imports a Python agent class); drop --language or pass --language python\n`,
    );
    expect(existsSync(dir)).toBe(false);
  });
});

/** Stand-ins of the modules the starters import, each recording what the agent asked of it. */
const STUBS: Record<string, string> = {
  "harbor/__init__.py": "",
  "harbor/agents/__init__.py": "",
  "harbor/agents/base.py": `class BaseAgent:
    def __init__(self, logs_dir, model_name=None, **kwargs):
        self.logs_dir, self.model_name = logs_dir, model_name
`,
  "litellm.py": `from types import SimpleNamespace as NS
calls = []

async def acompletion(**kwargs):
    calls.append({k: v for k, v in kwargs.items() if k != "messages"} | {"n_messages": len(kwargs["messages"])})
    if len(calls) == 1:
        call = NS(id="c1", function=NS(name="bash", arguments='{"command": "ls /app"}'))
        message = NS(content=None, tool_calls=[call])
    else:
        message = NS(content="done", tool_calls=None)
    return NS(usage=NS(prompt_tokens=100, completion_tokens=10), choices=[NS(message=message)])
`,
  "tau2/__init__.py": "",
  "tau2/agent/__init__.py": "",
  "tau2/agent/llm_agent.py": `from types import SimpleNamespace as NS

class LLMAgent:
    def __init__(self, tools, domain_policy, llm, llm_args=None):
        self.tools, self.domain_policy, self.llm, self.llm_args = tools, domain_policy, llm, llm_args or {}

    def get_init_state(self, message_history=None):
        return NS(system_messages=[{"role": "system", "content": self.system_prompt}], messages=list(message_history or []))
`,
  "tau2/data_model/__init__.py": "",
  "tau2/data_model/message.py": `class MultiToolMessage:
    def __init__(self, tool_messages):
        self.tool_messages = tool_messages
`,
  "tau2/utils/__init__.py": "",
  "tau2/utils/llm_utils.py": `calls = []

def generate(**kwargs):
    calls.append(kwargs)
    return {"role": "assistant", "content": "How can I help?"}
`,
};

const HARBOR_DRIVER = `import asyncio, json, pathlib, sys
from types import SimpleNamespace as NS
import litellm
from agent.agent import HarnessAgent

class Container:
    commands = []
    async def exec(self, command, timeout_sec=None):
        self.commands.append(command)
        return NS(stdout="main.py\\n", stderr="", return_code=0)

logs = pathlib.Path(sys.argv[1])
agent, context, container = HarnessAgent(logs_dir=logs, model_name=sys.argv[2]), NS(), Container()
asyncio.run(agent.run("List /app.", container, context))
transcript = logs / "transcript.json"
print(json.dumps({"calls": litellm.calls, "commands": container.commands,
                  "tokens": [context.n_input_tokens, context.n_output_tokens],
                  "transcript": json.loads(transcript.read_text()) if transcript.exists() else None}))
`;

const TAU2_DRIVER = `import json, sys
from tau2.data_model.message import MultiToolMessage
from tau2.utils import llm_utils
from agent.agent import HarnessAgent

agent = HarnessAgent(tools=["find_order"], domain_policy="Refunds need a receipt.", llm=sys.argv[1], llm_args={"temperature": 0})
state = agent.get_init_state()
reply, state = agent.generate_next_message({"role": "user", "content": "Hi"}, state)
reply, state = agent.generate_next_message(MultiToolMessage([{"role": "tool", "content": "order 7"}]), state)
call = llm_utils.calls[-1]
print(json.dumps({"n_calls": len(llm_utils.calls), "reply": reply, "system": call["messages"][0]["content"],
                  "messages": call["messages"][1:], "call": {k: v for k, v in call.items() if k != "messages"}}))
`;

function stubs(): string {
  const dir = tempDir("starter-stubs-");
  for (const [file, text] of Object.entries(STUBS)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

const GATEWAY = {
  ANTHROPIC_BASE_URL: "http://127.0.0.1:41001",
  OPENAI_BASE_URL: "http://127.0.0.1:41001/v1",
  ANTHROPIC_API_KEY: "run-token-a",
  OPENAI_API_KEY: "run-token-o",
};

/** Per --provider: agent_model, the model LiteLLM is asked for, and the gateway's base URL and token it must use. */
const PROVIDERS = [
  ["anthropic", "claude-sonnet-4-6", "anthropic/claude-sonnet-4-6", GATEWAY.ANTHROPIC_BASE_URL, "run-token-a"],
  ["openai", "openai/gpt-5-mini", "openai/gpt-5-mini", GATEWAY.OPENAI_BASE_URL, "run-token-o"],
] as const;

describe.skipIf(!haveTool("python3"))("the starters' agents, on stand-ins of the tools' modules", () => {
  it.each(PROVIDERS)(
    "Harbor (%s): each model call goes to the gateway's base URL; commands run in the container; a train transcript",
    async (provider, model, litellmModel, base, token) => {
      const dir = await init("harbor", provider);
      const logs = tempDir("harbor-logs-");
      const r = python(
        ["-c", HARBOR_DRIVER, logs, model],
        { ...GATEWAY, PYTHONPATH: `${stubs()}${delimiter}${dir}` },
        dir,
      );
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.calls).toHaveLength(2);
      for (const call of out.calls) {
        expect(call).toMatchObject({ model: litellmModel, api_base: base, api_key: token });
        expect(call.tools[0].function.name).toBe("bash");
      }
      expect(out.calls[1].n_messages).toBe(4); // system, task, the tool call, its output
      expect(out.commands).toEqual(["ls /app"]);
      expect(out.tokens).toEqual([200, 20]);
      const toolTurn = out.transcript.find((m: { role: string }) => m.role === "tool");
      expect(toolTurn.content).toBe("main.py\n\n[exit code 0]");
      expect(out.transcript.at(-1)).toMatchObject({ role: "assistant", content: "done" });
    },
  );

  it("Harbor: a test run (HARNESS_SAVE_TRACE=0, as the wrapper sets it) leaves no transcript on disk", async () => {
    const dir = await init("harbor", "anthropic");
    const logs = tempDir("harbor-logs-");
    const r = python(
      ["-c", HARBOR_DRIVER, logs, "claude-sonnet-4-6"],
      { ...GATEWAY, HARNESS_SAVE_TRACE: "0", PYTHONPATH: `${stubs()}${delimiter}${dir}` },
      dir,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).transcript).toBeNull();
    expect(readdirSync(logs)).toEqual([]);
  });

  it.each(PROVIDERS)(
    "tau2 (%s): the policy in the system prompt, the conversation kept, each call to the gateway's base URL",
    async (provider, model, litellmModel, base, token) => {
      const dir = await init("tau2", provider);
      const r = python(["-c", TAU2_DRIVER, model], { ...GATEWAY, PYTHONPATH: `${stubs()}${delimiter}${dir}` }, dir);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.n_calls).toBe(2);
      expect(out.call).toMatchObject({ model: litellmModel, api_base: base, api_key: token, temperature: 0 });
      expect(out.call.tools).toEqual(["find_order"]);
      expect(out.system).toContain("<policy>\nRefunds need a receipt.\n</policy>");
      expect(out.messages).toEqual([
        { role: "user", content: "Hi" },
        { role: "assistant", content: "How can I help?" },
        { role: "tool", content: "order 7" },
      ]);
    },
  );
});
