/**
 * One stack = one DGX host. Read the stack's config through the door, build the host, export
 * what an operator (and the other host's stack) needs after `pulumi up`: only what is defined.
 *
 * The outputs are one object (`export =`) rather than `export const`s, so that a value this host
 * does not have (the manager's swarm outputs on the worker, the off-site key while the other
 * host's key is unpinned) is left out instead of exported as undefined: the SDK warns
 * "Undefined value (<key>) will not show as a stack output" for each such export on every preview
 * (sdk/nodejs/runtime/stack.ts, massage). The run entry takes a module's exports object as the
 * stack outputs (sdk/nodejs/cmd/run/run.ts, runProgram).
 */
import * as pulumi from "@pulumi/pulumi";
import { UNPINNED_HOST_KEY } from "./components/config";
import { loadStackConfig } from "./components/config/runtime";
import { DgxHost } from "./components/dgx-host";

const { config, sshPrivateKey, alertWebhook, heartbeatUrl, borgPassphrase, cloudCredentials, serviceSecrets } = loadStackConfig();
if (config.host.ssh.hostKey === UNPINNED_HOST_KEY) {
  pulumi.log.warn(`host.ssh.hostKey is '${UNPINNED_HOST_KEY}': preview only; pulumi up refuses until the key is pinned`);
}
const host = new DgxHost(config.host.name, {
  config,
  sshPrivateKey,
  serviceSecrets,
  ...(alertWebhook ? { alertWebhook } : {}),
  ...(heartbeatUrl ? { heartbeatUrl } : {}),
  ...(borgPassphrase ? { borgPassphrase } : {}),
  ...(cloudCredentials ? { cloudCredentials } : {}),
});

/** The entries of `o` whose value is defined. */
function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const manager = host.swarm?.manager;
export = defined({
  hostName: config.host.name,
  address: config.host.address,
  daemonJsonHash: host.daemon.fragmentHash,
  sysctlFile: host.kernel.path,
  volumes: [...host.volumes.byName.keys()],
  containers: pulumi.all([...host.services.values()].map((s) => s.container.name)),
  overlayNetwork: host.swarm?.networkName,
  // the manager's: read by the worker's stack through a StackReference; the token stays a secret
  swarmManagerAddress: manager?.swarmManagerAddress,
  swarmManagerNodeId: manager?.swarmManagerNodeId,
  swarmWorkerToken: manager?.swarmWorkerToken,
  // the fio baseline beside the plan's targets (met or not), and capacity projections
  performanceBaseline: host.monitoring?.baseline,
  capacityPlanned: host.monitoring?.capacityPlanned,
  capacityLive: host.monitoring?.capacityLive,
  // the local repository, its exported key (copy it off the host, with the passphrase), and the
  // public key this host's off-site copy logs in with on the other host (append-only there)
  backupRepository: host.backup?.repository,
  backupKeyExport: host.backup?.keyExport,
  backupOffsitePublicKey: host.backup?.offsitePublicKey,
  backupStatus: host.backup?.status,
  // backup jobs made by hand that run borg on this stack's repository (report or disable them: backup.existingJobs)
  existingBackupJobs: host.backup?.existingJobsFound,
});
