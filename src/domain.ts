/** Words of the domain that every room uses, storage included: types only, so any room may import them. */

/** The two kinds of task the loop runs: train (the coding agent sees its traces) and test (the gate only). */
export type Split = "train" | "test";
