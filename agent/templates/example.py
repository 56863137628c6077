"""
Customer-support agent for the example benchmark (Acme Shop), in Python.

The harness calls `run(task, ctx)` once per task: `task["input"]["message"]` is the customer's message;
`ctx.client.messages.create(...)` calls the model (the Messages API; the reply is a dict), `ctx.model`
is the model to use, `ctx.env.execute(tool, input)` runs a shop tool, `ctx.trace.note()` adds a note
to the trace. Return the final reply to the customer. Standard library only.
"""
import json

SYSTEM_PROMPT = """You are a customer support agent for Acme Shop.
Help the customer with their request using the tools available to you.
When you are done, reply to the customer with a short final message."""

TOOLS = [
    {
        "name": "find_customer",
        "description": "Find a customer by email.",
        "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
    },
    {
        "name": "get_order",
        "description": "Get an order.",
        "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
    {
        "name": "list_orders",
        "description": "List a customer's orders.",
        "input_schema": {
            "type": "object",
            "properties": {"customer_id": {"type": "string"}},
            "required": ["customer_id"],
        },
    },
    {
        "name": "cancel_order",
        "description": "Cancel an order.",
        "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
    {
        "name": "refund_order",
        "description": "Refund an order.",
        "input_schema": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "item_ids": {"type": "array", "items": {"type": "string"}}},
            "required": ["order_id"],
        },
    },
    {
        "name": "change_address",
        "description": "Change the shipping address of an order.",
        "input_schema": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "address": {"type": "string"}},
            "required": ["order_id", "address"],
        },
    },
]

MAX_TURNS = 6


def run(task, ctx):
    messages = [{"role": "user", "content": task["input"]["message"]}]
    for _ in range(MAX_TURNS):
        response = ctx.client.messages.create(
            model=ctx.model, max_tokens=1024, system=SYSTEM_PROMPT, tools=TOOLS, messages=messages
        )
        messages.append({"role": "assistant", "content": response["content"]})
        tool_uses = [b for b in response["content"] if b.get("type") == "tool_use"]
        if not tool_uses:
            return "\n".join(b["text"] for b in response["content"] if b.get("type") == "text")
        results = []
        for use in tool_uses:
            output = ctx.env.execute(use["name"], use["input"])
            results.append({"type": "tool_result", "tool_use_id": use["id"], "content": json.dumps(output)})
        messages.append({"role": "user", "content": results})
    ctx.trace.note("gave up: too many turns")
    return "Sorry, I could not finish your request."
