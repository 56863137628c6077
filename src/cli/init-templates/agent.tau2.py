"""
The agent under optimization, for tau2-bench. The harness's tau2 wrapper registers `HarnessAgent` as a tau2
agent (built as `HarnessAgent(tools=, domain_policy=, llm=, llm_args=)`); tau2 then runs it in conversations
with its user simulator and scores each one. tau2 calls `get_init_state()` once per conversation, then
`generate_next_message(message, state)` for each user or tool message; the reply is a message to the user
or tool calls. `self.llm` is the config's agent_model, `self.tools` the domain's tools.

Its model calls, and those of tau2's user simulator (through LiteLLM), reach the harness's gateway at the
base URL the command receives, ANTHROPIC_BASE_URL or OPENAI_BASE_URL by API_FORMAT: it holds the real
key, meters each call against budget_usd and refuses one past it.
"""

import os

from tau2.agent.llm_agent import LLMAgent
from tau2.data_model.message import MultiToolMessage
from tau2.utils.llm_utils import generate

# The model API this agent calls (`init --provider`): "anthropic" (Messages) or "openai" (Chat Completions).
API_FORMAT = "anthropic"

INSTRUCTIONS = """You are a customer service agent. Help the user strictly within the <policy> below.
In each turn either send one message to the user or make tool calls, never both.
Check facts with the tools before you act on them, and ask for explicit confirmation before any change."""


def gateway(model):
    """LiteLLM's model, base URL and key for one call through the harness's gateway (any provider/ prefix dropped)."""
    env = "OPENAI" if API_FORMAT == "openai" else "ANTHROPIC"
    base, key = os.environ[f"{env}_BASE_URL"], os.environ[f"{env}_API_KEY"]
    return {"model": f"{API_FORMAT}/{model.split('/', 1)[-1]}", "api_base": base, "api_key": key}


class HarnessAgent(LLMAgent):
    @property
    def system_prompt(self):
        return f"<instructions>\n{INSTRUCTIONS}\n</instructions>\n<policy>\n{self.domain_policy}\n</policy>"

    def generate_next_message(self, message, state):
        if isinstance(message, MultiToolMessage):
            state.messages.extend(message.tool_messages)
        elif message is not None:
            state.messages.append(message)
        reply = generate(
            tools=self.tools,
            messages=state.system_messages + state.messages,
            **{**(self.llm_args or {}), **gateway(self.llm)},
        )
        state.messages.append(reply)
        return reply, state
