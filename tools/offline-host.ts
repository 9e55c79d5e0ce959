/**
 * Builds one host's stack offline: the same config door and components as `pulumi up`, under
 * Pulumi's mock runtime, with no credentials and no network. Used by `npm run synth` and
 * `npm run drift`, so both see exactly what the program declares.
 */
import * as pulumi from "@pulumi/pulumi";
import type { HostConfig } from "../components/config";
import { DgxHost } from "../components/dgx-host";
import { startCapture, type Capture } from "./mock-capture";

export interface OfflineHost {
  readonly host: DgxHost;
  readonly capture: Capture;
}

/**
 * @param managerOutputs a worker's view of the manager stack's outputs; placeholders when absent
 *   (synth has no access to another stack)
 */
export async function buildHostOffline(stack: string, config: HostConfig, managerOutputs?: Record<string, unknown>): Promise<OfflineHost> {
  const ref = config.swarm?.managerStack;
  const stackOutputs = ref
    ? {
        [ref]: managerOutputs ?? {
          swarmManagerAddress: `<swarmManagerAddress of ${ref}>`,
          swarmManagerNodeId: `<swarmManagerNodeId of ${ref}>`,
          swarmWorkerToken: "<secret: swarmWorkerToken>",
          overlayNetwork: `<overlayNetwork of ${ref}>`,
        },
      }
    : {};
  const capture = await startCapture({ stack, config: {}, secrets: {}, preview: true, stackOutputs, secretOutputNames: ["swarmWorkerToken"] });
  // secrets are placeholders: nothing offline can read them, and no command runs
  const host = new DgxHost(config.host.name, {
    config,
    sshPrivateKey: pulumi.secret("offline: no credentials"),
    ...(config.backup ? { borgPassphrase: pulumi.secret("offline: no credentials") } : {}),
    serviceSecrets: Object.fromEntries(
      Object.values(config.services).flatMap((s) => Object.values(s.secretEnv).map((k) => [k, pulumi.secret("offline: no credentials")])),
    ),
  });
  await capture.settled();
  return { host, capture };
}
