/**
 * Memorising train tasks (#22.3): a table of train task ids, or a train task's input copied verbatim, is a
 * rejection with its reason (quoting nothing), and the tasks it names are handed to suite promotion.
 */
import { describe, expect, it } from "vitest";
import { checkHardcoding, type HeldOutTasks, joinedLiterals, MIN_TRAIN_IDS } from "../../../src/gate/hardcode.ts";

const TRAIN = [
  {
    id: "cust-0107",
    input: "Hello, this is Kim Lee (kim@example.com). Please cancel order O1001, I no longer need it.",
  },
  {
    id: "cust-0213",
    input: "Hello, this is Ravi Shah (ravi@example.com). My parcel O2044 never arrived; where is it?",
  },
  {
    id: "cust-0388",
    input: "Hello, this is Ana Pires (ana@example.com). Change the address on O3100 to my office please.",
  },
  {
    id: "cust-0412",
    input: "Hello, this is Tom Berg (tom@example.com). I was charged twice for O4120, refund one please.",
  },
];
const heldOut: HeldOutTasks = {
  ids: ["ho-test-0042"],
  inputs: ["Hi, I'm Dana Oyelaran (dana.o@example.com). My order O7731 arrived crushed; refund it to my card please."],
  trainInputs: TRAIN.map((t) => t.input),
  trainTasks: TRAIN.map((t) => ({ id: t.id, inputs: [t.input] })),
};
const ACCEPTED = "export default async function run(task) {\n  return solve(task);\n}\n";
const check = (added: string, accepted = ACCEPTED) =>
  checkHardcoding({ candidate: `${accepted}${added}`, accepted, heldOut });

describe("memorisation of train tasks", () => {
  it.each([
    ["a table of train ids", `const KNOWN = new Set(["cust-0107", "cust-0213", "cust-0388"]);\n`, 3],
    ["ids split over concatenated literals", `const K = ["cust-" + "0107", 'cust-02' + '13'];\n`, 2],
    ["ids as arrays joined", `const K = [["cu", "st-0107"].join(""), ["cust-", "0213"].join('')];\n`, 2],
    ["ids with their separators changed", `const K = ["CUST_0107", "cust0213", "Cust.0388"];\n`, 3],
  ])("%s is rejected, naming how many, quoting none", (_name, added, hits) => {
    const v = check(added);
    expect(v.passed).toBe(false);
    expect(v.trainIdHits).toBe(hits);
    expect(v.reason).toBe(
      `hard-coding check: the change adds a table of ${hits} train task id(s); memorising train tasks passes them without generalising; an agent must learn the pattern, not the tasks`,
    );
    for (const t of TRAIN) expect(v.reason).not.toContain(t.id);
    expect(v.memorised).toEqual(
      TRAIN.map((t) => t.id)
        .slice(0, hits)
        .sort(),
    );
  });

  it("one train id is below a table: not a rejection, but suite promotion is told", () => {
    expect(MIN_TRAIN_IDS).toBe(2);
    const v = check(`// the refund path broke on cust-0412\n`);
    expect(v.passed).toBe(true);
    expect(v.memorised).toEqual(["cust-0412"]);
  });

  it("a train task's own input copied verbatim is memorisation", () => {
    const v = check(`if (String(task.input).includes("${TRAIN[3]!.input.slice(36, 90)}")) return "refunded";\n`);
    expect(v).toMatchObject({ passed: false, trainInputHits: 1, fragmentHits: 0, memorised: ["cust-0412"] });
    expect(v.reason).toMatch(/verbatim text \(≥ 40 characters\) from 1 train task input\(s\)/);
    expect(v.reason).not.toContain("O4120");
  });

  it("wording shared by many train inputs (a greeting, a policy) is not a task's own", () => {
    const v = check(`const GREETING = "Hello, this is the support desk (support@example.com). Please hold";\n`);
    expect(v.passed).toBe(true);
    expect(v.memorised).toEqual([]);
  });

  it("text the accepted agent already had is the incumbent's, not the change's", () => {
    const accepted = `${ACCEPTED}const K = ["cust-0107", "cust-0213"];\n`;
    expect(check("const y = 1;\n", accepted)).toMatchObject({ passed: true, trainIdHits: 0, memorised: [] });
  });

  it("a longer id that merely contains a train id is not that id", () => {
    expect(check(`const K = ["cust-01070", "xcust-0213"];\n`)).toMatchObject({ passed: true, trainIdHits: 0 });
  });

  it("without the train tasks (a caller that does not pass them) only held-out knowledge is checked, as before", () => {
    const { trainTasks: _omitted, ...old } = heldOut;
    const v = checkHardcoding({
      candidate: `${ACCEPTED}const K = ["cust-0107", "cust-0213"];\n`,
      accepted: ACCEPTED,
      heldOut: old,
    });
    expect(v).toMatchObject({ passed: true, trainIdHits: 0, trainInputHits: 0 });
  });

  it("held-out ids are found through the same light encodings", () => {
    expect(check(`const x = "ho-test-" + "0042";\n`)).toMatchObject({ passed: false, idHits: 1 });
    expect(check(`const x = "HO_TEST_0042";\n`)).toMatchObject({ passed: false, idHits: 1 });
  });

  it("a hostile file of unbalanced quotes and pluses is scanned in linear time", () => {
    const hostile = `${"'+".repeat(40_000)}${'"'.repeat(40_000)}${"[`,".repeat(20_000)}`;
    // A catastrophic regex here would not finish within the test's timeout at all.
    expect(joinedLiterals(hostile).length).toBeGreaterThan(hostile.length);
    expect(check(hostile).passed).toBe(true);
  });
});
