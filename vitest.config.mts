import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    // Many tests run real borg, rsync or fio: about 1 s of start-up per borg process on 2 idle cores,
    // two to three times that on a shared CI machine. The slowest takes about 15 s idle.
    testTimeout: 90_000,
    // hooks start servers and delete test trees of thousands of files: vitest's 10 s default failed
    // a whole file under load (migrate-fixtures' cleanup), which CI counts as a failure
    hookTimeout: 120_000,
    // unit tests reach loopback only: the guard refuses any other connection and fails the test
    setupFiles: ["test/network-guard.ts"],
    // the Pulumi mock runtime is process-global: one file at a time, in one process per file
    fileParallelism: false,
  },
});
