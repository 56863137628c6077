"""
The agent under optimization, for Terminal-Bench 2.0 through Harbor. Harbor imports `HarnessAgent` from
this file (a Harbor `BaseAgent`), calls `run(instruction, environment, context)` once per task, and its
verifier then scores what the agent left in the task's container. The agent runs on the host, inside
Harbor's own Python (so LiteLLM, which Harbor installs, is there), and works in the container through one
`bash` tool. `self.model_name` is the config's agent_model.

Every model call goes to the harness's gateway: the base URL and token the benchmark command receives
(ANTHROPIC_BASE_URL or OPENAI_BASE_URL, by API_FORMAT). The gateway holds the real key, meters each call
and refuses one that would pass budget_usd.
"""

import json
import os

import litellm
from harbor.agents.base import BaseAgent

# The model API this agent calls (`init --provider`): "anthropic" (Messages) or "openai" (Chat Completions).
API_FORMAT = "anthropic"
MAX_TURNS = 60
COMMAND_TIMEOUT_S = 180
OUTPUT_LIMIT = 10_000

SYSTEM_PROMPT = """You are an expert Linux engineer working alone in a terminal on the task below.
Use the bash tool to look around, act and check your work; nobody will answer questions.
Read command output carefully, fix what fails, and verify the result before you stop.
When the task is done, reply with a short summary and no tool call."""

BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run one bash command in the task's container; returns its stdout, stderr and exit code.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "the command line to run"}},
            "required": ["command"],
        },
    },
}


def gateway(model):
    """LiteLLM's model, base URL and key for one call through the harness's gateway (any provider/ prefix dropped)."""
    env = "OPENAI" if API_FORMAT == "openai" else "ANTHROPIC"
    base, key = os.environ[f"{env}_BASE_URL"], os.environ[f"{env}_API_KEY"]
    return {"model": f"{API_FORMAT}/{model.split('/', 1)[-1]}", "api_base": base, "api_key": key}


def clip(text):
    """Long output keeps its head and tail: errors are usually at the end."""
    if len(text) <= OUTPUT_LIMIT:
        return text
    half = OUTPUT_LIMIT // 2
    return f"{text[:half]}\n[... {len(text) - OUTPUT_LIMIT} characters cut ...]\n{text[-half:]}"


class HarnessAgent(BaseAgent):
    @staticmethod
    def name():
        return "auto-harness-agent"

    def version(self):
        return "0.1.0"

    async def setup(self, environment):
        pass

    async def run(self, instruction, environment, context):
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": instruction}]
        tokens_in = tokens_out = 0
        try:
            for _ in range(MAX_TURNS):
                response = await litellm.acompletion(messages=messages, tools=[BASH_TOOL], **gateway(self.model_name))
                if response.usage:
                    tokens_in += response.usage.prompt_tokens or 0
                    tokens_out += response.usage.completion_tokens or 0
                message = response.choices[0].message
                calls = message.tool_calls or []
                turn = {"role": "assistant", "content": message.content}
                if calls:
                    turn["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.function.name, "arguments": c.function.arguments},
                        }
                        for c in calls
                    ]
                messages.append(turn)
                if not calls:
                    break
                for call in calls:
                    output = await self.bash(environment, call)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
        finally:
            context.n_input_tokens = tokens_in
            context.n_output_tokens = tokens_out
            self.save_transcript(messages)

    async def bash(self, environment, call):
        if call.function.name != "bash":
            return f"error: there is no tool {call.function.name!r}; the only tool is bash"
        try:
            command = json.loads(call.function.arguments or "{}").get("command", "")
        except json.JSONDecodeError:
            return 'error: the arguments were not JSON; call bash with {"command": "..."}'
        try:
            result = await environment.exec(command, timeout_sec=COMMAND_TIMEOUT_S)
        except Exception as e:  # a command that hangs or kills the shell is the agent's to see, not a crash
            return f"error: the command did not finish: {type(e).__name__}: {e}"
        stderr = f"[stderr]\n{result.stderr}" if result.stderr else ""
        parts = [result.stdout or "", stderr, f"[exit code {result.return_code}]"]
        return clip("\n".join(p for p in parts if p))

    def save_transcript(self, messages):
        # The wrapper copies this trial's agent/ folder into the train traces; test runs turn it off.
        if os.environ.get("HARNESS_SAVE_TRACE", "1") == "1":
            (self.logs_dir / "transcript.json").write_text(json.dumps(messages, indent=2, default=str))
