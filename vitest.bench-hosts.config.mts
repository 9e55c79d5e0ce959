import { defineConfig } from "vitest/config";

// Benchmarks on the test hosts (bench/*.hosts.ts): they apply the stacks with the e2e engine,
// which runs the program through vitest's module registry. Root and a running Docker engine.
export default defineConfig({
  test: {
    include: ["bench/**/*.hosts.ts"],
    testTimeout: 40 * 60_000,
    hookTimeout: 25 * 60_000,
    fileParallelism: false,
  },
});
