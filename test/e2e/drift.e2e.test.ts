/**
 * The host drift probe on a real test host: apply the test-sark stack (the e2e engine,
 * engine.ts), then the probe reports no drift; edit daemon.json, a sysctl value and a unit file by
 * hand, then it reports exactly those three. `pulumi up` again does not repair them: no input
 * changed, so nothing runs; `pulumi up --replace` of the three commands does.
 * The probe is the one `npm run drift` runs (tools/drift-core.ts), with the declaration built
 * offline by the same components (tools/offline-host.ts); only the stack's config comes from the
 * test stack file instead of the Automation API.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHostConfig, type HostConfig } from "../../components/config";
import type { DriftExpectation } from "../../components/render/drift";
import { ALERT_TIMER } from "../../components/render/monitoring";
import { probeHost } from "../../tools/drift-core";
import { buildHostOffline } from "../../tools/offline-host";
import type { Engine } from "./engine";
import { addOperator, engineFor, mustRoot, startHosts, stopHosts, testStackConfig, type TestHosts } from "./hosts";

let hosts: TestHosts;
let keyPath: string;
let values: Record<string, unknown>;
let config: HostConfig;
let engine: Engine;
let secrets: Record<string, string>;
/** What the probe checks: the stack's declaration, built offline once. */
let expectation: DriftExpectation;

const probe = () => {
  const h = hosts.hosts.sark;
  return probeHost(expectation, { address: h.address, port: h.port, user: "maxvamp", hostKey: h.hostKey, sudo: true }, keyPath);
};

beforeAll(async () => {
  hosts = startHosts();
  keyPath = hosts.privateKeyPath;
  addOperator(hosts, "sark");
  // the backup's off-site receiving side is installed on clu by sark's stack
  addOperator(hosts, "clu");
  values = testStackConfig(hosts, "sark");
  config = parseHostConfig(values, { source: "Pulumi.test-sark.yaml", mode: "apply" });
  engine = engineFor(hosts);
  secrets = { sshPrivateKey: fs.readFileSync(keyPath, "utf8"), borgPassphrase: "drift-test-passphrase" };
  expectation = (await buildHostOffline("test-sark", config)).host.drift;
  // whatever the stack's test-only preparations need (the monitoring e2e loop-mounts this)
  mustRoot(hosts, "sark", "mkdir -p /mnt/alert-test");
});

afterAll(() => {
  stopHosts();
});

describe("host drift probe", () => {
  it("GIVEN the stack applied (its container created by the engine, as the provider would) THEN no drift", async () => {
    const r = await engine.up({ stack: "test-sark", config: values, secrets });
    expect(r.step("sark-chromadb-container").op).toBe("create");
    expect(mustRoot(hosts, "sark", "docker inspect -f '{{.State.Running}}' chromadb").trim()).toBe("true");
    expect(probe()).toEqual([]);
  });

  it("GIVEN daemon.json, a sysctl value and a unit file edited by hand THEN exactly those three", () => {
    mustRoot(
      hosts,
      "sark",
      `python3 -c 'import json; p="/etc/docker/daemon.json"; d=json.load(open(p)); d["log-opts"]["max-size"]="10m"; json.dump(d, open(p, "w"))'`,
    );
    mustRoot(hosts, "sark", "sysctl -q -w vm.swappiness=33");
    mustRoot(hosts, "sark", `sed -i 's/^OnUnitActiveSec=.*/OnUnitActiveSec=1h/' /etc/systemd/system/${ALERT_TIMER}`);
    const drifts = probe();
    expect(drifts.map((d) => [d.kind, d.what])).toEqual([
      ["daemon.json", "log-opts"],
      ["file", `/etc/systemd/system/${ALERT_TIMER}`],
      ["sysctl", "vm.swappiness"],
    ]);
    expect(drifts[0]).toMatchObject({ expected: '{"max-file": "5", "max-size": "100m"}', actual: '{"max-file": "5", "max-size": "10m"}' });
    expect(drifts[2]).toMatchObject({ expected: "10", actual: "33" });
  });

  it("GIVEN pulumi up again THEN nothing runs (no input changed) and the drift stays", async () => {
    const r = await engine.up({ stack: "test-sark", config: values, secrets });
    expect(r.steps.filter((s) => s.op !== "same" && s.op !== "read")).toEqual([]);
    expect(probe().map((d) => d.kind)).toEqual(["daemon.json", "file", "sysctl"]);
  });

  it("GIVEN pulumi up --replace of the three commands THEN no drift", async () => {
    const replace = ["sark-daemon-merge", "sark-kernel-apply", "sark-monitoring-units"];
    const r = await engine.up({ stack: "test-sark", config: values, secrets, replace });
    expect(r.names("replace").sort()).toEqual(replace.sort());
    expect(probe()).toEqual([]);
  });
});
