/**
 * Runs the read-only drift probe on a host: drift-probe.sh over SSH (the same `bash -c` command
 * form and `sudo -n` as the program's own commands), the expectation on stdin, the host key
 * pinned. Returns the differences.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UNPINNED_HOST_KEY } from "../components/config";
import { knownHostsName, scriptCommand } from "../components/render/command";
import type { Drift, DriftExpectation } from "../components/render/drift";

export interface ProbeTarget {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** `ssh-ed25519 AAAA...`: the only key accepted. */
  readonly hostKey: string;
  readonly sudo: boolean;
}

export function probeHost(expectation: DriftExpectation, target: ProbeTarget, keyPath: string): Drift[] {
  if (target.hostKey === UNPINNED_HOST_KEY) throw new Error(`${expectation.host}: host.ssh.hostKey is not pinned; the probe connects only to a pinned host`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-drift-"));
  try {
    const knownHosts = path.join(dir, "known_hosts");
    fs.writeFileSync(knownHosts, `${knownHostsName(target.address, target.port)} ${target.hostKey}\n`);
    const r = spawnSync(
      "ssh",
      [
        "-F",
        "/dev/null",
        "-i",
        keyPath,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        "ConnectTimeout=15",
        "-o",
        "LogLevel=ERROR",
        "-p",
        String(target.port),
        `${target.user}@${target.address}`,
        scriptCommand("drift-probe", [], { sudo: target.sudo }),
      ],
      { input: JSON.stringify(expectation), encoding: "utf8", timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    );
    if (r.status !== 0) throw new Error(`${expectation.host}: the drift probe failed (${r.status ?? r.signal}): ${r.stderr}${r.error ? String(r.error) : ""}`);
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "[]") as Drift[];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
