import { expect } from "vitest";
import { checkInvariants } from "./invariants.ts";

/** Asserts DESIGN §4's invariants (see checkInvariants); returns the accepted iterations. */
export function expectInvariants(dir: string, iterations: number, label = ""): number[] {
  const { accepted, violations } = checkInvariants(dir, iterations);
  expect(violations, label).toEqual([]);
  return accepted;
}
