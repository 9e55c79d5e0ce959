import { defineConfig } from "vitest/config";

// The end-to-end suite: real test hosts (containers with systemd, sshd and docker) on this
// machine. Needs root and a running Docker engine; see README "End-to-end tests".
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    testTimeout: 15 * 60_000,
    hookTimeout: 25 * 60_000,
    fileParallelism: false,
    // tests in a file share the hosts and run in order
    sequence: { concurrent: false },
  },
});
