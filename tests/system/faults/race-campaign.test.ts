/**
 * A slice of the fault campaign inside races of two candidates (tests/helpers/race-campaign.ts): a signal and a
 * read-only workspace while a candidate's edit has just landed (a sibling's reply on its way), an unusable
 * steering edit in the run's last round, once the candidates are screened. The run finishes with every invariant, no candidate copy left, and every reply the
 * endpoint served journaled once. `npm run bench:crash` injects every fault at every race point.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { FAULTS, runScenario } from "../../helpers/fault-campaign.ts";
import { prepareRaceExperiment, RACE_PLAN, raceSubject } from "../../helpers/race-campaign.ts";
import { raceCodingModel } from "../../helpers/race-coding-model.ts";
import { tempDir } from "../../helpers/temp.ts";

const SLICE: [string, string][] = [
  ["SIGTERM", "race:candidate-edited"],
  ["read-only workspace", "race:candidate-edited"],
  ["invalid config saved mid-run", "gate:screened"],
];

let server: TestLlmServer;
let prepared = "";

describe("fault campaign inside a race of candidates (slice)", () => {
  beforeAll(async () => {
    server = await startTestLlmServer({ responder: raceCodingModel(RACE_PLAN) });
    prepared = await prepareRaceExperiment(server);
  }, 300_000);
  afterAll(async () => {
    rmSync(prepared, { recursive: true, force: true });
    await server?.close();
  });

  it.each(SLICE)(
    "%s at %s: the race's run finishes with every invariant, every served reply journaled once",
    async (name, point) => {
      const fault = FAULTS.find((f) => f.name === name);
      if (!fault) throw new Error(`no fault ${name}`);
      const result = await runScenario(fault, point, tempDir("race-campaign-"), raceSubject(prepared, server));
      expect(result.violations).toEqual([]);
    },
    300_000,
  );
});
