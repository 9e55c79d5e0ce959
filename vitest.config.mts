import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    testTimeout: 30_000,
    // the Pulumi mock runtime is process-global: one file at a time, in one process per file
    fileParallelism: false,
  },
});
