import { describe, expect, it } from "vitest";
import { stratifiedSplit } from "../../../src/benchmark/split.ts";

const baseline = (pass: number, fail: number, nulls: number): Record<string, number | null> => {
  const out: Record<string, number | null> = {};
  for (let i = 0; i < pass; i++) out[`p${i}`] = 1;
  for (let i = 0; i < fail; i++) out[`f${i}`] = i % 2 === 0 ? 0 : 0.25;
  for (let i = 0; i < nulls; i++) out[`n${i}`] = null;
  return out;
};

describe("stratifiedSplit", () => {
  it.each([
    { pass: 20, fail: 30, nulls: 0, trainPass: 14, trainFail: 21 },
    { pass: 10, fail: 10, nulls: 3, trainPass: 7, trainFail: 7 },
    { pass: 0, fail: 9, nulls: 1, trainPass: 0, trainFail: 6 },
    { pass: 3, fail: 0, nulls: 0, trainPass: 2, trainFail: 0 },
  ])("keeps the pass/fail share in both splits ($pass pass, $fail fail, $nulls null)", (c) => {
    const s = stratifiedSplit(baseline(c.pass, c.fail, c.nulls), 42);
    expect(s.train.filter((id) => id.startsWith("p"))).toHaveLength(c.trainPass);
    expect(s.train.filter((id) => id.startsWith("f"))).toHaveLength(c.trainFail);
    expect(s.counts).toEqual({
      train: c.trainPass + c.trainFail,
      test: c.pass + c.fail - c.trainPass - c.trainFail,
      train_passing: c.trainPass,
      test_passing: c.pass - c.trainPass,
      excluded: c.nulls,
    });
    expect(s.excluded).toHaveLength(c.nulls);
    expect(new Set([...s.train, ...s.test, ...s.excluded]).size).toBe(c.pass + c.fail + c.nulls);
    expect(s.train.some((id) => s.test.includes(id))).toBe(false);
  });

  it("is reproducible for a seed, whatever the key order, and differs across seeds", () => {
    const b = baseline(20, 30, 2);
    const reversed = Object.fromEntries(Object.entries(b).reverse());
    expect(stratifiedSplit(b, 7)).toEqual(stratifiedSplit(reversed, 7));
    expect(stratifiedSplit(b, 7).train).not.toEqual(stratifiedSplit(b, 8).train);
  });

  it("honours the train share", () => {
    expect(stratifiedSplit(baseline(10, 10, 0), 1, 0.5).counts).toMatchObject({ train: 10, test: 10 });
  });
});
