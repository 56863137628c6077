#!/usr/bin/env python3
"""
auto-harness `command` wrapper for tau2-bench (sierra-research/tau2-bench), run in-process as the
original did: the agent class in the experiment's agent file is registered as a tau2 agent factory
(`factory(tools, domain_policy, **kwargs)`), and `tau2.run.run_domain` runs the requested tasks.

tau2 saves the run to <DATA_DIR>/simulations/<save_to>/results.json (DATA_DIR = $TAU2_DATA_DIR or
tau2's own data/), a Results document:

    {"timestamp", "info", "tasks": [...], "simulations": [
        {"id", "task_id", "trial", "termination_reason", "reward_info": {"reward", ...} | null,
         "messages": [...], "agent_cost", "user_cost", ...}]}

A simulation without reward_info, or ended by "infrastructure_error", is an infrastructure error
(null). Several trials of a task are averaged. Train runs write each simulation to
HARNESS_TRACES_DIR/<task>/simulation.json; every run deletes its results directory afterwards, so
test-split conversations are never left on disk.

Standard library only (besides tau2 itself): it runs in the Python environment that has tau2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

from harness_contract import (  # noqa: E402
    clamp_reward,
    die,
    fresh_trace_dir,
    merge_trials,
    read_invocation,
    write_results,
)

AGENT_NAME = "auto_harness_agent"
TAU2_REPO = "https://github.com/sierra-research/tau2-bench"
INFRA_TERMINATIONS = {"infrastructure_error"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", required=True, help="tau2 domain: airline, retail, telecom, mock, ...")
    p.add_argument("--agent-class", default="HarnessAgent", help="agent class in the agent file")
    p.add_argument("--model", help="the agent's LLM (default: the config's agent_model)")
    p.add_argument("--user-model", help="the user simulator's LLM (default: the agent's)")
    p.add_argument("--task-split-name", default="base", help="tau2 task split the ids come from (default: base)")
    p.add_argument("--max-concurrency", type=int, help="default: the config's max_concurrency")
    p.add_argument("--num-trials", type=int, default=1)
    p.add_argument("--seed", type=int, default=300)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--data-dir", help="TAU2_DATA_DIR (default: the environment's, else tau2's own)")
    return p.parse_args(argv)


def load_agent_class(agent_file: str, class_name: str):
    if not agent_file.endswith(".py"):
        die(f"the agent file {agent_file} must be a Python file with class {class_name}")
    spec = importlib.util.spec_from_file_location("harness_agent_under_test", agent_file)
    if spec is None or spec.loader is None:
        die(f"cannot load {agent_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, class_name, None)
    if cls is None:
        die(f"{agent_file} has no class {class_name}")
    return cls


def simulation_reward(sim: dict) -> float | None:
    if sim.get("termination_reason") in INFRA_TERMINATIONS:
        return None
    info = sim.get("reward_info")
    if not isinstance(info, dict):
        return None
    return clamp_reward(info.get("reward"))


def read_results(path: str) -> list[dict]:
    with open(path) as f:
        doc = json.load(f)
    sims = doc.get("simulations") if isinstance(doc, dict) else None
    if not isinstance(sims, list):
        raise ValueError(f"{path}: no simulations list")
    return [s for s in sims if isinstance(s, dict) and "task_id" in s]


def write_traces(traces_dir: str, task_id: str, sims: list[dict]) -> None:
    dest = fresh_trace_dir(traces_dir, task_id)
    for i, sim in enumerate(sims):
        name = "simulation.json" if len(sims) == 1 else f"simulation-trial-{i + 1}.json"
        with open(os.path.join(dest, name), "w") as f:
            json.dump(sim, f, indent=2)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    inv = read_invocation()
    if args.data_dir:
        os.environ["TAU2_DATA_DIR"] = os.path.abspath(args.data_dir)  # tau2 reads it at import time
    try:
        from tau2 import registry
        from tau2.data_model.simulation import TextRunConfig
        from tau2.run import get_tasks, run_domain
        from tau2.utils.utils import DATA_DIR
    except ImportError as e:
        install = f"git clone {TAU2_REPO} && {sys.executable} -m pip install -e tau2-bench"
        why = f"tau2-bench is not installed for {sys.executable} (cannot import tau2: {e})"
        die(f"{why}: install it with `{install}`, or run this wrapper with the Python that has it (command.run)", 3)

    if inv.list_only:
        tasks = get_tasks(task_set_name=args.domain, task_split_name=args.task_split_name)
        write_results(inv.results_file, {str(t.id): None for t in tasks})
        return 0

    agent_class = load_agent_class(inv.agent_file, args.agent_class)

    def factory(tools, domain_policy, **kwargs):
        return agent_class(
            tools=tools, domain_policy=domain_policy, llm=kwargs.get("llm"), llm_args=kwargs.get("llm_args")
        )

    if registry.get_agent_factory(AGENT_NAME) is None:
        registry.register_agent_factory(factory, AGENT_NAME)

    model = args.model or inv.agent_model
    if not model:
        die("no model: pass --model or set agent_model in the config")
    save_to = f"auto-harness-{inv.split}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    run_dir = os.path.join(str(DATA_DIR), "simulations", save_to)
    config = dict(
        domain=args.domain,
        agent=AGENT_NAME,
        llm_agent=model,
        llm_user=args.user_model or model,
        task_split_name=args.task_split_name,
        task_ids=inv.task_ids or None,
        num_trials=args.num_trials,
        max_concurrency=args.max_concurrency or inv.max_concurrency or 3,
        seed=args.seed,
        save_to=save_to,
    )
    if args.max_steps is not None:
        config["max_steps"] = args.max_steps
    try:
        try:
            run_domain(TextRunConfig(**config))
        except Exception as e:  # tau2 raised: whatever it saved is still read below
            print(f"warning: tau2 run_domain raised {type(e).__name__}: {e}", file=sys.stderr)
        results_file = os.path.join(run_dir, "results.json")
        if not os.path.isfile(results_file):
            die(f"tau2 wrote no results file {results_file}", 3)
        try:
            sims = read_results(results_file)
        except (OSError, ValueError) as e:
            die(f"unreadable tau2 results: {e}", 3)
        by_task: dict[str, list[dict]] = {}
        for sim in sims:
            by_task.setdefault(str(sim["task_id"]), []).append(sim)
        wanted = inv.task_ids or sorted(by_task)
        results = {t: merge_trials([simulation_reward(s) for s in by_task.get(t, [])]) for t in wanted}
        if inv.traces_dir:
            for task in wanted:
                if by_task.get(task):
                    write_traces(inv.traces_dir, task, by_task[task])
        write_results(inv.results_file, results)
        return 0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
