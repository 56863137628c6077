// The agent under optimization for the `command` example: the benchmark program (run_bench.mjs) imports
// this file and calls `classify` once per review. The coding agent improves the rules.
const POSITIVE = ["love", "great", "wonderful"];
const NEGATIVE = ["terrible", "awful", "worst"];

export function classify(text: string): "positive" | "negative" {
  const words = text.toLowerCase();
  const score = POSITIVE.filter((w) => words.includes(w)).length - NEGATIVE.filter((w) => words.includes(w)).length;
  return score >= 0 ? "positive" : "negative";
}
