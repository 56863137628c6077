/** `npm run bench`: figures, not pass/fail. Speed and memory live here, never in the tests. */
import { benchOrchestrator } from "./orchestrator.ts";
import { benchRunner, benchStartup } from "./runner.ts";
import { benchSealedGateway } from "./sealed-gateway.ts";
import { benchBigReplies, benchSoak } from "./soak.ts";

const print = (title: string, figures: Record<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`  ${k.padEnd(32)} ${v}\n`);
};

// `npm run bench -- distributed`: only the queue's figures (real redis-server and worker processes; slow).
if (process.argv[2] === "distributed") {
  const { benchDistributed } = await import("./distributed.ts");
  for (const latency of [50, 500])
    print(`executor: bullmq vs local (${latency} ms replies)`, await benchDistributed(latency));
  process.exit(0);
}

print("orchestrator (zero-cost steps, synchronous = FULL)", await benchOrchestrator());
// A long night in flat memory: RSS and journal bytes per iteration after a 50-iteration warm-up.
print(
  "soak (300 iterations: real journal, record, learnings, steering and the gate's benchmark loads; stand-in models)",
  await benchSoak(300),
);
print("six 10 MB model replies held as a train task's trace events", await benchBigReplies());
print("agent process start-up to a loaded agent (median of 5)", {
  sandbox_bwrap_ms: await benchStartup("bwrap"),
  sandbox_none_ms: await benchStartup("none"),
});
// Sealed, with the fresh agent process the runner keeps started between runs (the daemon's case).
print("runner, sealed (200 tasks, 500 ms replies, concurrency 16, warm process)", await benchRunner(500));
print(
  "runner, sealed (200 tasks, 500 ms replies, concurrency 16, cold start)",
  await benchRunner(500, { start: "cold" }),
);
// Real replies take seconds; at 50 ms the fixed costs per task show.
print("runner, sealed (200 tasks, 50 ms replies, concurrency 16, warm process)", await benchRunner(50));
print(
  "runner, unsealed (200 tasks, 50 ms replies, concurrency 16, warm process)",
  await benchRunner(50, { sandbox: "none" }),
);
// An unmodified SDK inside the sandbox: the endpoint on its loopback, the channel, the gateway, the test server.
print("model call from inside the sandbox (openai SDK, 300 sequential calls) vs direct", await benchSealedGateway(300));
