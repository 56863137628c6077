import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Journal } from "../../src/journal/journal.ts";
import { loopIterationOf, readResults } from "../../src/workspace/files.ts";

const git = (dir: string, ...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" });

/**
 * DESIGN §4's invariants after a finished run: one commit and one results row per accepted iteration, one
 * learnings entry per finished iteration, agent.ts equal to the last accepted commit, integrity ok, every
 * journaled reply paid once, no step left started. Returns the accepted iterations and every violation found.
 * Free of vitest, so the crash sweep (`npm run bench:crash`) checks the same.
 */
export function checkInvariants(dir: string, iterations: number): { accepted: number[]; violations: string[] } {
  const violations: string[] = [];
  const check = (ok: boolean, what: string) => {
    if (!ok) violations.push(what);
  };
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
  try {
    check(journal.integrityCheck() === "ok", "journal integrity_check is not ok");
    const run = journal.runs.latestRun();
    if (!run) return { accepted: [], violations: ["no run in the journal"] };
    check(run.status === "done", `run status ${run.status}, not done`);
    const started = journal.runs.steps(run.id).filter((s) => s.status === "started");
    check(started.length === 0, `steps left started: ${started.map((s) => s.key).join(", ")}`);
    const finished = journal.runs.iterations(run.id).map((i) => i.iteration);
    const expected = Array.from({ length: iterations }, (_, i) => i + 1);
    check(same(finished, expected), `finished iterations ${finished} instead of ${expected}`);
    const accepted = journal.runs
      .iterations(run.id)
      .filter((i) => i.outcome === "accepted")
      .map((i) => i.iteration);

    const rows = readResults(join(dir, "workspace", "results.tsv"));
    const loops = rows.map(loopIterationOf);
    check(same(loops, [0, ...accepted]), `results.tsv rows for iterations ${loops}, accepted ${accepted}`);
    check(
      same(
        rows.map((r) => r.iteration),
        rows.map((_, i) => i),
      ),
      "results.tsv rows not numbered by position",
    );
    const log = git(dir, "log", "--format=%h%x00%(trailers:key=Harness-Run,valueonly)%x01");
    const trailers = log
      .split("\x01")
      .map((r) => r.trim().split("\0"))
      .filter(([, t]) => t?.trim())
      .map(([sha, t]) => ({ sha: sha as string, trailer: (t as string).trim() }));
    const got = trailers.map((t) => t.trailer).sort();
    const want = accepted.map((i) => `${run.id}/${i}`).sort();
    check(same(got, want), `run commits ${got} instead of ${want}`);
    for (const row of rows.slice(1)) {
      const sha = trailers.find((t) => t.trailer === `${run.id}/${loopIterationOf(row)}`)?.sha;
      check(sha === row.commit, `row ${loopIterationOf(row)} points at ${row.commit}, its commit is ${sha}`);
    }

    const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
    for (const i of expected) {
      const n = learnings.split(`<!-- harness:entry run=${run.id} iteration=${i} -->`).length - 1;
      check(n === 1, `${n} learnings entries for iteration ${i}`);
    }
    const summaries = learnings.split(`<!-- harness:summary run=${run.id} -->`).length - 1;
    check(summaries === 1, `${summaries} closing summaries`);

    const agent = readFileSync(join(dir, "agent", "agent.ts"), "utf8");
    check(agent === git(dir, "show", "HEAD:agent/agent.ts"), "agent/agent.ts differs from HEAD");
    const status = git(dir, "status", "--porcelain");
    check(status === "", `working tree not clean: ${status.trim()}`);

    // Nothing paid twice: each step's reply was bought once and reused after a crash.
    const keys = journal.ledger.llmCalls(run.id).map((c) => `${c.stepKey}|${c.promptHash}`);
    check(new Set(keys).size === keys.length, "an LLM reply was paid twice");
    return { accepted, violations };
  } finally {
    journal.close();
  }
}
