import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    testTimeout: 30_000,
    // unit tests reach loopback only: the guard refuses any other connection and fails the test
    setupFiles: ["test/network-guard.ts"],
    // the Pulumi mock runtime is process-global: one file at a time, in one process per file
    fileParallelism: false,
  },
});
