"""
The agent under optimization. The harness calls `run(task, ctx)` once per task and scores what it
returns; `ctx.model` is the config's agent_model, `ctx.trace.note()` adds your own notes. It calls its
model in OpenAI's Chat Completions format at the base URL in its environment (OPENAI_BASE_URL: the
harness's gateway, which holds the key and meters every call). Standard library only; with a virtualenv
(`python: .venv/bin/python` in experiment_config.yaml) the `openai` package finds the same base URL.
"""
import json
import os
import urllib.request

SYSTEM_PROMPT = """You answer geography questions.
Answer in one short sentence."""


def run(task, ctx):
    body = {
        "model": ctx.model,
        "max_completion_tokens": 256,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": task["input"]["question"]},
        ],
    }
    request = urllib.request.Request(
        os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        reply = json.loads(response.read())
    return reply["choices"][0]["message"]["content"] or ""
