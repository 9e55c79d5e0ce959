/**
 * One stack = one DGX host. Read the stack's config through the door, build the host, export
 * what an operator wants to see after `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";
import { UNPINNED_HOST_KEY } from "./components/config";
import { DgxHost } from "./components/host";
import { loadStackConfig } from "./components/stack-config";

const { config, sshPrivateKey } = loadStackConfig();
if (config.host.ssh.hostKey === UNPINNED_HOST_KEY) {
  pulumi.log.warn(`host.ssh.hostKey is '${UNPINNED_HOST_KEY}': preview only; pulumi up refuses until the key is pinned`);
}
const host = new DgxHost(config.host.name, { config, sshPrivateKey });

export const hostName = config.host.name;
export const address = config.host.address;
export const daemonJsonHash = host.daemon.fragmentHash;
export const sysctlFile = host.kernel.path;
