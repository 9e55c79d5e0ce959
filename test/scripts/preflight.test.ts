import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "vitest";
import { describeWith, itWith } from "../tools";
import { runScript } from "./run";

/** A `docker` that answers `info` (the only call preflight makes for address checks) and nothing else. */
function fakeDocker(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-fake-docker-"));
  fs.writeFileSync(path.join(dir, "docker"), '#!/bin/sh\n[ "$1" = info ] && exit 0\necho "fake docker: $*" >&2\nexit 1\n', { mode: 0o755 });
  return dir;
}

describeWith({ tools: ["ip"] }, "preflight.sh: the addresses published ports are bound to", () => {
  const env = () => ({ PATH: `${fakeDocker()}:${process.env.PATH ?? ""}` });

  itWith({ tools: ["ip"] }, "GIVEN an address this machine has THEN it passes and says so", () => {
    const r = runScript("preflight", ["testhost", "address:127.0.0.1"], env());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("address 127.0.0.1: an address of this host");
  });

  itWith(
    { tools: ["ip"] },
    "GIVEN an address this machine does not have THEN it fails before anything changes, naming the address, the key and the host's addresses",
    () => {
      // a documentation address (RFC 5737): no machine has it
      const r = runScript("preflight", ["testhost", "address:127.0.0.1", "address:192.0.2.99"], env());
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("the host testhost is not as the stack expects (1 problem); nothing was changed:");
      expect(r.stderr).toContain("a published port is bound to 192.0.2.99 (services.<s>.ports[].ip), but testhost has no such address (ip -o -4 addr: ");
      expect(r.stderr).toMatch(/ip -o -4 addr: [^)]*127\.0\.0\.1/);
    },
  );
});
