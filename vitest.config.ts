import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash tests spawn real daemons; two cores are shared by all of them.
    maxWorkers: 2,
  },
});
