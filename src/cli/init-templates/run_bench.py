#!/usr/bin/env python3
"""
A benchmark for auto-harness's `command` adapter (standard library only): it runs the agent on the
tasks in bench/tasks.jsonl, scores each answer, and writes {"results": {task_id: reward}} where the
harness asks (HARNESS_RESULTS_FILE). Replace the task list, the way the agent is run and score() with
your own benchmark; keep the HARNESS_* contract (README, "Your own benchmark").

The agent runs here, in this process's environment (the harness's sandbox applies to the agents it
runs itself, not to a command's): a Python agent is imported and called as run(task, ctx); a
TypeScript agent runs under Node through bench/run_agent.mjs with the harness's own tsx and SDK.
"""
import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def load_tasks():
    with open(os.path.join(HERE, "tasks.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def score(task, answer) -> float:
    return 1.0 if task["expected"].lower() in str(answer or "").lower() else 0.0


class _Messages:
    def create(self, **params):
        base = os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com").rstrip("/")
        request = urllib.request.Request(
            f"{base}/v1/messages",
            data=json.dumps(params).encode(),
            headers={
                "content-type": "application/json",
                "anthropic-version": "2023-06-01",
                "x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""),
            },
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())


class _Trace:
    def __init__(self):
        self.notes = []

    def note(self, message, data=None):
        self.notes.append({"message": str(message), "data": data})


class _Context:
    def __init__(self, model):
        self.model = model
        self.client = type("Client", (), {"messages": _Messages()})()
        self.trace = _Trace()
        self.env = {}
        self.cancelled = False


def run_python_agent(agent_file, tasks, model):
    spec = importlib.util.spec_from_file_location("agent_under_test", agent_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = getattr(module, "run", None) or module.HarnessAgent().run
    answers = {}
    for task in tasks:
        ctx = _Context(model)
        try:
            answers[task["id"]] = {"answer": run({"id": task["id"], "input": task.get("input")}, ctx), "notes": ctx.trace.notes}
        except urllib.error.URLError as e:
            answers[task["id"]] = {"infra": f"model API unreachable: {e}"}
        except Exception as e:  # the agent's own failure: it scores 0
            answers[task["id"]] = {"error": f"{type(e).__name__}: {e}"}
    return answers


def run_ts_agent(agent_file, tasks, model):
    payload = json.dumps({"agentFile": agent_file, "model": model, "tasks": [{"id": t["id"], "input": t.get("input")} for t in tasks]})
    proc = subprocess.run(
        ["node", os.path.join(HERE, "run_agent.mjs")], input=payload, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-2000:])
        sys.exit(3)
    return json.loads(proc.stdout)


def main():
    split = os.environ.get("HARNESS_SPLIT", "all")
    wanted = [t for t in os.environ.get("HARNESS_TASK_IDS", "").split(",") if t]
    results_file = os.environ["HARNESS_RESULTS_FILE"]
    traces = os.environ.get("HARNESS_TRACES_DIR") if split == "train" else None
    tasks = load_tasks()
    if os.environ.get("HARNESS_LIST_ONLY") == "1":
        with open(results_file, "w") as f:
            json.dump({"results": {t["id"]: None for t in tasks}}, f)
        return
    if wanted:
        tasks = [t for t in tasks if t["id"] in wanted]
    agent_file = os.environ["HARNESS_AGENT_FILE"]
    model = os.environ.get("HARNESS_AGENT_MODEL", "claude-sonnet-4-6")
    runner = run_python_agent if agent_file.endswith(".py") else run_ts_agent
    answers = runner(agent_file, tasks, model)
    results = {}
    for task in tasks:
        got = answers.get(task["id"], {"infra": "no answer"})
        results[task["id"]] = None if "infra" in got else score(task, got.get("answer"))
        if traces:
            os.makedirs(os.path.join(traces, task["id"]), exist_ok=True)
            with open(os.path.join(traces, task["id"], "run.json"), "w") as f:
                json.dump({"task": {"id": task["id"], "input": task.get("input")}, **got, "reward": results[task["id"]]}, f, indent=2)
    with open(results_file, "w") as f:
        json.dump({"results": results}, f)


if __name__ == "__main__":
    main()
