import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    // Many tests run real borg, rsync or fio: about 1 s of start-up per borg process on 2 idle cores,
    // two to three times that on a shared CI machine. The slowest takes about 15 s idle.
    testTimeout: 90_000,
    // unit tests reach loopback only: the guard refuses any other connection and fails the test
    setupFiles: ["test/network-guard.ts"],
    // the Pulumi mock runtime is process-global: one file at a time, in one process per file
    fileParallelism: false,
  },
});
