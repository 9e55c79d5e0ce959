/**
 * `npm run drift -- <stack>`: compares a host with what its stack declares and exits 1 on drift.
 *
 * Remote commands have no read step, so `pulumi preview --refresh` cannot see a file edited by
 * hand on a host; this probe can. It reads the stack's config (secrets decrypted with the
 * passphrase in PULUMI_CONFIG_PASSPHRASE[_FILE]) through the Pulumi Automation API, builds the
 * host's declaration offline with the same components as `pulumi up`, and runs the read-only
 * drift-probe.sh on the host over SSH with the pinned host key. Needs the Pulumi CLI.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { ConfigError, parseStackConfig } from "../components/config";
import { renderDriftTable } from "../components/render/drift";
import { probeHost } from "./drift-core";
import { buildHostOffline } from "./offline-host";

const REPO = path.resolve(__dirname, "..");

async function main(): Promise<number> {
  const stackName = process.argv[2];
  if (!stackName) {
    console.error("usage: npm run drift -- <stack>");
    return 2;
  }
  const stack = await LocalWorkspace.selectStack({ stackName, workDir: REPO });
  const { config, secrets } = parseStackConfig(await stack.getAllConfig(), { source: `Pulumi.${stackName}.yaml`, mode: "apply" });
  const ref = config.swarm?.managerStack;
  const managerOutputs = ref
    ? Object.fromEntries(Object.entries(await (await LocalWorkspace.selectStack({ stackName: ref, workDir: REPO })).outputs()).map(([k, v]) => [k, v.value]))
    : undefined;
  const { host } = await buildHostOffline(stackName, config, managerOutputs);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-drift-key-"));
  const keyPath = path.join(dir, "id");
  try {
    fs.writeFileSync(keyPath, secrets.sshPrivateKey ?? "", { mode: 0o600 });
    const h = config.host;
    const drifts = probeHost(host.drift, { address: h.address, port: h.ssh.port, user: h.ssh.user, hostKey: h.ssh.hostKey, sudo: h.sudo }, keyPath);
    process.stdout.write(renderDriftTable(h.name, drifts));
    return drifts.length === 0 ? 0 : 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof ConfigError ? e.message : e);
    process.exit(2);
  },
);
