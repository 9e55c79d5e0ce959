/**
 * One stack = one DGX host. Read the stack's config through the door, build the host, export
 * what an operator (and the other host's stack) needs after `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";
import { UNPINNED_HOST_KEY } from "./components/config";
import { DgxHost } from "./components/host";
import { loadStackConfig } from "./components/config/runtime";

const { config, sshPrivateKey, alertWebhook, borgPassphrase } = loadStackConfig();
if (config.host.ssh.hostKey === UNPINNED_HOST_KEY) {
  pulumi.log.warn(`host.ssh.hostKey is '${UNPINNED_HOST_KEY}': preview only; pulumi up refuses until the key is pinned`);
}
const host = new DgxHost(config.host.name, {
  config,
  sshPrivateKey,
  ...(alertWebhook ? { alertWebhook } : {}),
  ...(borgPassphrase ? { borgPassphrase } : {}),
});

export const hostName = config.host.name;
export const address = config.host.address;
export const daemonJsonHash = host.daemon.fragmentHash;
export const sysctlFile = host.kernel.path;
export const volumes = [...host.volumes.byName.keys()];
export const containers = pulumi.all([...host.services.values()].map((s) => s.container.name));
export const overlayNetwork = host.swarm?.networkName;
// read by the worker's stack through a StackReference; the token stays a secret
export const swarmManagerAddress = host.swarm?.manager?.swarmManagerAddress;
export const swarmManagerNodeId = host.swarm?.manager?.swarmManagerNodeId;
export const swarmWorkerToken = host.swarm?.manager?.swarmWorkerToken;
// issue 7: the fio baseline beside the plan's targets (met or not), and capacity projections
export const performanceBaseline = host.monitoring?.baseline;
export const capacityPlanned = host.monitoring?.capacityPlanned;
export const capacityLive = host.monitoring?.capacityLive;
// issue 6: the local repository, its exported key (copy it off the host, with the passphrase),
// and the public key this host's off-site copy logs in with on the other host (append-only there)
export const backupRepository = host.backup?.repository;
export const backupKeyExport = host.backup?.keyExport;
export const backupOffsitePublicKey = host.backup?.offsitePublicKey;
export const backupStatus = host.backup?.status;
// backup jobs made by hand that run borg on this stack's repository (report or disable them: backup.existingJobs)
export const existingBackupJobs = host.backup?.existingJobsFound;
