import { createHash } from "node:crypto";
import { parseSplit, type SplitFile } from "../workspace/files.ts";
import type { Db } from "./db.ts";

export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

export interface SteeringVersion {
  path: string;
  sha256: string;
  status: "accepted" | "refused";
  commit: string | null;
  createdAt: number;
}

interface SteeringRecord {
  path: string;
  sha256: string;
  status: "accepted" | "refused";
  commit_sha: string | null;
  created_at: number;
}

const toSteering = (r: SteeringRecord): SteeringVersion => ({
  path: r.path,
  sha256: r.sha256,
  status: r.status,
  commit: r.commit_sha,
  createdAt: r.created_at,
});

/** The experiment fact holding a rejected candidate's diff (kept for the report; the file itself is restored). */
export const rejectedDiffKey = (runId: string, iteration: number): string => `rejected_diff:${runId}:${iteration}`;

/** The experiment fact holding a round's proposer angle (a plateau restart or not), decided once. */
export const angleKey = (runId: string, iteration: number): string => `angle:${runId}:${iteration}`;

/** The experiment fact holding a run's closing summary as learnings.md got it, so a lost one is rebuilt. */
export const closingSummaryKey = (runId: string): string => `closing_summary:${runId}`;

/**
 * The records decisions trust, pinned with their hashes (split, suite, baseline, a run's holdout score), the
 * steering files' versions, and facts about the experiment outside any run. A workspace file is a view of a pin.
 */
export class PinStore {
  constructor(private readonly db: Db) {}

  transaction<T>(fn: () => T): T {
    return this.db.write(fn);
  }

  pin(name: string, content: string): void {
    this.db.write(() => {
      this.db
        .prepare(
          `INSERT INTO pinned (name, content, sha256, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET content = excluded.content, sha256 = excluded.sha256, updated_at = excluded.updated_at`,
        )
        .run(name, content, sha256(content), this.db.now());
    });
  }

  pinned(name: string): { content: string; sha256: string } | undefined {
    if (!this.db.hasTable("pinned")) return undefined;
    return this.db.prepare("SELECT content, sha256 FROM pinned WHERE name = ?").get(name) as
      | { content: string; sha256: string }
      | undefined;
  }

  // ---- facts about the experiment outside any run (the baseline's spend, a rejected diff)

  putFact(key: string, value: unknown): void {
    this.db.write(() => {
      this.db
        .prepare(
          `INSERT INTO experiment_facts (key, value, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        )
        .run(key, JSON.stringify(value), this.db.now());
    });
  }

  fact(key: string): unknown {
    if (!this.db.hasTable("experiment_facts")) return undefined;
    const r = this.db.prepare("SELECT value FROM experiment_facts WHERE key = ?").get(key) as
      | { value: string }
      | undefined;
    return r ? JSON.parse(r.value) : undefined;
  }

  // ---- steering versions

  /** The latest accepted version of a steering file, or undefined before the first is pinned. */
  acceptedSteering(path: string): SteeringVersion | undefined {
    const r = this.db
      .prepare("SELECT * FROM steering_versions WHERE path = ? AND status = 'accepted' ORDER BY id DESC LIMIT 1")
      .get(path) as SteeringRecord | undefined;
    return r ? toSteering(r) : undefined;
  }

  steeringVersions(path: string): SteeringVersion[] {
    const rows = this.db.prepare("SELECT * FROM steering_versions WHERE path = ? ORDER BY id").all(path);
    return (rows as SteeringRecord[]).map(toSteering);
  }

  recordSteering(row: Omit<SteeringVersion, "createdAt">): void {
    this.db.write(() => {
      this.db
        .prepare("INSERT INTO steering_versions (path, sha256, status, commit_sha, created_at) VALUES (?, ?, ?, ?, ?)")
        .run(row.path, row.sha256, row.status, row.commit, this.db.now());
    });
  }
}

/** The split as the journal pins it (the only source a decision takes it from), or null before `prepare`. */
export function pinnedSplit(pins: Pick<PinStore, "pinned">): SplitFile | null {
  const pin = pins.pinned("split");
  return pin ? parseSplit(pin.content, "split (journal)") : null;
}

/** The baseline's val_score and agent as pinned by `prepare`, `rebaseline` or `adopt`. */
export function pinnedBaseline(pins: Pick<PinStore, "pinned">): { valScore: number | null; agentHash?: string } | null {
  const pin = pins.pinned("baseline");
  return pin ? (JSON.parse(pin.content) as { valScore: number | null; agentHash?: string }) : null;
}
