#!/usr/bin/env python3
"""
auto-harness's Python agent runtime (standard library only).

`harness_runtime.py --check <agent.py>` imports the agent file and checks its shape: a module-level
`run(task, ctx)` function, or a class (`HarnessAgent`, else the only class with a `run` method)
constructed with no arguments whose instances have `run(task, ctx)`.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys


def load_agent(path: str):
    spec = importlib.util.spec_from_file_location("agent_under_test", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["agent_under_test"] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "run", None)
    if callable(fn) and not inspect.isclass(fn):
        return fn
    classes = [
        c for c in vars(module).values()
        if inspect.isclass(c) and c.__module__ == module.__name__ and callable(getattr(c, "run", None))
    ]
    chosen = getattr(module, "HarnessAgent", None)
    if not (inspect.isclass(chosen) and callable(getattr(chosen, "run", None))):
        chosen = classes[0] if len(classes) == 1 else None
    if chosen is None:
        raise TypeError(
            f"{path}: define run(task, ctx) or a class HarnessAgent with a run(self, task, ctx) method"
        )
    return chosen().run


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--check":
        try:
            load_agent(argv[1])
        except BaseException as e:  # the agent's own code: report whatever it raised
            import traceback

            traceback.print_exc(limit=-3)
            print(f"{argv[1]} does not load: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        return 0
    print("usage: harness_runtime.py --check <agent.py>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
