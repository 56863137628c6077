// The agent's child process starts here. The SDK is loaded before tsx's loader hooks are registered:
// through them its many modules load about 0.7 s slower, once per benchmark run.
await import("@anthropic-ai/sdk");
// The same registration as `node --import tsx` (ESM and CommonJS hooks).
await import("tsx");
await import("./child.ts");
