#!/usr/bin/env python3
"""
auto-harness `command` wrapper for Harbor (`harbor run`), e.g. Terminal-Bench 2.0.

Runs the requested tasks with `harbor run`, the agent given by its import path (derived from the
experiment's agent file), the config's model and concurrency, and the Harbor environment named here;
then reads the job directory Harbor wrote:

    <jobs-dir>/<job-name>/
        config.json  result.json  job.log
        <task>__<suffix>/            one directory per trial
            result.json              TrialResult: task_name, verifier_result.rewards.reward, exception_info
            agent/                   the agent's logs and trajectory (e.g. trajectory.json)
            verifier/                reward.txt | reward.json, test-stdout.txt
            exception.txt            when the trial raised

A trial without a verifier result (the verifier never ran: environment, timeout or agent crash before
verification) is an infrastructure error (null), as in the original. Train runs copy each trial's
result, agent logs and verifier output to HARNESS_TRACES_DIR/<task>/; every run deletes its job
directory afterwards, so test-split trajectories are never left on disk.

Standard library only: it runs in whatever Python environment has Harbor installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

from harness_contract import (  # noqa: E402
    clamp_reward,
    die,
    fresh_trace_dir,
    merge_trials,
    module_import_path,
    read_invocation,
    write_results,
)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", "-d", help="registry dataset name@version, e.g. terminal-bench@2.0")
    src.add_argument("--path", "-p", help="local dataset directory (one task directory per task)")
    p.add_argument("--env", "-e", default="docker", help="Harbor environment: docker, daytona, e2b, modal, ...")
    p.add_argument("--agent-class", default="HarnessAgent", help="agent class in the agent file")
    p.add_argument("--agent-import-path", help="module:Class (default: from HARNESS_AGENT_FILE and --agent-class)")
    p.add_argument("--model", help="model name (default: the config's agent_model)")
    p.add_argument("--n-concurrent", "-n", type=int, help="concurrent trials (default: the config's max_concurrency)")
    p.add_argument("--jobs-dir", help="where Harbor writes jobs (default: a temporary directory)")
    p.add_argument("--tasks-file", help="task names, one per line: the task list for a registry dataset")
    p.add_argument("--harbor", default=os.environ.get("HARBOR_BIN", "harbor"), help="the harbor executable")
    p.add_argument("--timeout", type=float, default=None, help="seconds for the whole harbor run")
    p.add_argument("--keep-jobs", action="store_true", help="keep train job directories (test ones are always deleted)")
    args, extra = p.parse_known_args(argv)
    # Everything after `--` goes to `harbor run` as is.
    if extra and extra[0] == "--":
        extra = extra[1:]
    return args, extra


def list_tasks(args: argparse.Namespace) -> list[str] | None:
    if args.tasks_file:
        with open(args.tasks_file) as f:
            return [line.strip() for line in f if line.strip() and not line.startswith("#")]
    if args.path:
        root = args.path
        return sorted(
            d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "task.toml"))
        )
    return None


def harbor_command(args, inv, job_name: str, jobs_dir: str, extra: list[str]) -> list[str]:
    import_path = args.agent_import_path or module_import_path(inv.agent_file, os.getcwd(), args.agent_class)
    cmd = [args.harbor, "run"]
    cmd += ["--dataset", args.dataset] if args.dataset else ["--path", args.path]
    cmd += ["--agent-import-path", import_path, "--env", args.env]
    model = args.model or inv.agent_model
    if model:
        cmd += ["--model", model]
    n = args.n_concurrent or inv.max_concurrency or 4
    if inv.task_ids:
        n = min(n, len(inv.task_ids))
        for tid in inv.task_ids:
            cmd += ["--include-task-name", tid]
    cmd += ["--n-concurrent", str(max(1, n))]
    cmd += ["--jobs-dir", jobs_dir, "--job-name", job_name, "--yes"]
    return cmd + extra


def trial_reward(data: dict) -> float | None:
    vr = data.get("verifier_result")
    if not isinstance(vr, dict):
        return None  # the verifier never ran
    rewards = vr.get("rewards")
    if not isinstance(rewards, dict) or not rewards:
        return None
    if "reward" in rewards:
        return clamp_reward(rewards["reward"])
    if len(rewards) == 1:
        return clamp_reward(next(iter(rewards.values())))
    return None


def read_job(job_dir: str) -> dict[str, list[tuple[str, float | None]]]:
    """task name → [(trial dir, reward)] from every trial directory of a job."""
    trials: dict[str, list[tuple[str, float | None]]] = {}
    for entry in sorted(os.listdir(job_dir)):
        trial_dir = os.path.join(job_dir, entry)
        if not os.path.isdir(trial_dir):
            continue
        result_file = os.path.join(trial_dir, "result.json")
        task = entry.rsplit("__", 1)[0]
        reward: float | None = None
        if os.path.isfile(result_file):
            try:
                with open(result_file) as f:
                    data = json.load(f)
                if isinstance(data, dict):
                    task = str(data.get("task_name") or task)
                    reward = trial_reward(data)
            except (OSError, ValueError) as e:
                print(f"warning: unreadable {result_file}: {e}", file=sys.stderr)
        trials.setdefault(task, []).append((trial_dir, reward))
    return trials


def copy_trace(trial_dirs: list[str], dest: str) -> None:
    many = len(trial_dirs) > 1
    for i, trial_dir in enumerate(trial_dirs):
        target = os.path.join(dest, f"trial-{i + 1}") if many else dest
        os.makedirs(target, exist_ok=True)
        for name in ("result.json", "exception.txt", "trial.log"):
            src = os.path.join(trial_dir, name)
            if os.path.isfile(src):
                shutil.copy2(src, os.path.join(target, name))
        for sub in ("agent", "verifier"):
            src = os.path.join(trial_dir, sub)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(target, sub), symlinks=False, dirs_exist_ok=True)


HARBOR_INSTALL = "uv tool install harbor"


def main(argv: list[str]) -> int:
    args, extra = parse_args(argv)
    inv = read_invocation()
    # Checked on the list call too (which needs no harbor with --tasks-file): `prepare` refuses here,
    # not hours later when every task of the baseline fails.
    if shutil.which(args.harbor) is None:
        why = f"Harbor is not installed (no {args.harbor!r} on PATH)"
        die(f"{why}: install it with `{HARBOR_INSTALL}`, or pass --harbor <path>", 3)
    if inv.list_only:
        listed = list_tasks(args)
        if listed is not None:
            write_results(inv.results_file, {t: None for t in listed})
            return 0
        # A registry dataset without --tasks-file: the only way to learn its tasks is to run them.
    if inv.split == "test" or not args.jobs_dir:
        jobs_dir = tempfile.mkdtemp(prefix="auto-harness-harbor-")
        own_jobs_dir = True
    else:
        jobs_dir = args.jobs_dir
        os.makedirs(jobs_dir, exist_ok=True)
        own_jobs_dir = False
    job_name = f"auto-harness-{inv.split}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    job_dir = os.path.join(jobs_dir, job_name)
    env = dict(os.environ)
    # Harbor imports the agent by module path: the experiment root must be importable.
    env["PYTHONPATH"] = os.getcwd() + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if inv.agent_model:
        env.setdefault("AGENT_MODEL", inv.agent_model)
    if inv.split != "train":
        env["HARNESS_SAVE_TRACE"] = "0"
    try:
        cmd = harbor_command(args, inv, job_name, jobs_dir, extra)
        try:
            proc = subprocess.run(cmd, env=env, stdout=sys.stderr, timeout=args.timeout)
            code = proc.returncode
        except FileNotFoundError:
            die(f"cannot run {args.harbor!r}: install Harbor (`{HARBOR_INSTALL}`) or pass --harbor <path>", 3)
        except subprocess.TimeoutExpired:
            print(f"warning: harbor run exceeded {args.timeout}s", file=sys.stderr)
            code = None
        if not os.path.isdir(job_dir):
            die(f"harbor run wrote no job directory {job_dir} (exit {code})", 3)
        trials = read_job(job_dir)
        if code not in (0, None):
            print(f"warning: harbor run exited {code}; reading the trials it finished", file=sys.stderr)
        wanted = inv.task_ids or sorted(trials)
        results = {t: merge_trials([r for _, r in trials.get(t, [])]) for t in wanted}
        if inv.traces_dir:
            for task in wanted:
                dirs = [d for d, _ in trials.get(task, [])]
                if dirs:
                    copy_trace(dirs, fresh_trace_dir(inv.traces_dir, task))
        write_results(inv.results_file, results)
        return 0
    finally:
        if own_jobs_dir:
            shutil.rmtree(jobs_dir, ignore_errors=True)
        elif not args.keep_jobs:
            shutil.rmtree(job_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
