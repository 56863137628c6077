"""
The command adapter's contract, for benchmark wrappers written in Python (standard library only).

The harness runs a wrapper with HARNESS_* variables (see the README's `command` section) and reads
{"results": {task_id: reward | null}} from HARNESS_RESULTS_FILE. null marks an infrastructure error:
the task is excluded from means and retried once, never charged to the agent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass


@dataclass
class Invocation:
    split: str  # train | test | all
    task_ids: list[str]  # empty: the whole split
    agent_file: str
    results_file: str
    traces_dir: str | None  # train only
    list_only: bool
    agent_model: str | None
    max_concurrency: int | None
    task_timeout: float | None


def _int(name: str) -> int | None:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else None


def _float(name: str) -> float | None:
    try:
        return float(os.environ.get(name, ""))
    except ValueError:
        return None


def read_invocation(environ: dict[str, str] | None = None) -> Invocation:
    env = os.environ if environ is None else environ
    results_file = env.get("HARNESS_RESULTS_FILE")
    if not results_file:
        die("HARNESS_RESULTS_FILE is not set: this script is run by auto-harness's `command` adapter")
    split = env.get("HARNESS_SPLIT", "all")
    if split not in ("train", "test", "all"):
        die(f"HARNESS_SPLIT must be train, test or all, got {split!r}")
    ids = [t for t in env.get("HARNESS_TASK_IDS", "").split(",") if t]
    traces = env.get("HARNESS_TRACES_DIR") or None
    return Invocation(
        split=split,
        task_ids=ids,
        agent_file=env.get("HARNESS_AGENT_FILE", ""),
        results_file=results_file,
        # Test and baseline runs never write traces, whatever the environment says.
        traces_dir=traces if split == "train" else None,
        list_only=env.get("HARNESS_LIST_ONLY") == "1",
        agent_model=env.get("HARNESS_AGENT_MODEL") or None,
        max_concurrency=_int("HARNESS_MAX_CONCURRENCY"),
        task_timeout=_float("HARNESS_TASK_TIMEOUT"),
    )


def write_results(path: str, results: dict[str, float | None]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"results": results}, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def clamp_reward(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value:  # NaN
        return None
    return max(0.0, min(1.0, float(value)))


def merge_trials(rewards: list[float | None]) -> float | None:
    """Several trials of one task: the mean of those that were scored; null when none was."""
    scored = [r for r in rewards if r is not None]
    return sum(scored) / len(scored) if scored else None


_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def safe_name(task_id: str) -> str:
    """A task id as one path segment (ids like "a/b" or ".." must not leave the traces dir)."""
    name = _SAFE.sub("_", task_id)
    return name if name not in ("", ".", "..") else f"_{name}"


def fresh_trace_dir(traces_dir: str, task_id: str) -> str:
    dest = os.path.join(traces_dir, safe_name(task_id))
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest, exist_ok=True)
    return dest


def module_import_path(agent_file: str, cwd: str, class_name: str) -> str:
    """agent/agent.py under the experiment root → "agent.agent:HarnessAgent"."""
    rel = os.path.relpath(os.path.abspath(agent_file), cwd)
    if rel.startswith("..") or not rel.endswith(".py"):
        die(f"the agent file {agent_file} must be a .py file inside the experiment directory {cwd}")
    return rel[:-3].replace(os.sep, ".") + ":" + class_name


def die(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
