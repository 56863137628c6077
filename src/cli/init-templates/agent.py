"""
The agent under optimization. The harness calls `run(task, ctx)` once per task and scores what it
returns. `ctx.client.messages.create(...)` calls the model (the Messages API; the reply is a dict, and
every call lands in the train trace), `ctx.model` is the config's agent_model, `ctx.trace.note()` adds
your own notes. Standard library only.
"""

SYSTEM_PROMPT = """You answer geography questions.
Answer in one short sentence."""


def run(task, ctx):
    response = ctx.client.messages.create(
        model=ctx.model,
        max_tokens=256,
        system=SYSTEM_PROMPT,
        messages=[{"role": "user", "content": task["input"]["question"]}],
    )
    return "\n".join(block["text"] for block in response["content"] if block.get("type") == "text")
