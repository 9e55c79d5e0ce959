import * as pulumi from "@pulumi/pulumi";
import type { HostConfig } from "./config";
import { DaemonConfig } from "./daemon-config";
import type { HostAccess } from "./host-command";
import { KernelTuning } from "./kernel-tuning";

/** A file the stack sends to the host, as synth writes it for review. */
export interface HostFile {
  /** Path on the host (or, for fragments merged into a host file, that file's path). */
  readonly path: string;
  readonly content: string;
  /** `file`: the whole file; `managed-keys`: the keys merged into the host's own file. */
  readonly kind: "file" | "managed-keys";
}

export interface DgxHostArgs {
  /** The validated config of this host (from the config door). */
  readonly config: HostConfig;
  /** The SSH private key, as a Pulumi secret. */
  readonly sshPrivateKey: pulumi.Output<string>;
}

/** Everything one DGX host's storage stack declares. */
export class DgxHost extends pulumi.ComponentResource {
  public readonly access: HostAccess;
  public readonly daemon: DaemonConfig;
  public readonly kernel: KernelTuning;
  /** What the host receives, for `npm run synth`. */
  public readonly hostFiles: readonly HostFile[];

  constructor(name: string, args: DgxHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:DgxHost", name, {}, opts);
    const { config } = args;
    this.access = {
      connection: {
        host: config.host.address,
        port: config.host.ssh.port,
        user: config.host.ssh.user,
        privateKey: args.sshPrivateKey,
        hostKey: config.host.ssh.hostKey,
      },
      sudo: config.host.sudo,
    };
    this.daemon = new DaemonConfig(`${name}-daemon`, { access: this.access, settings: config.docker.daemon }, { parent: this });
    this.kernel = new KernelTuning(`${name}-kernel`, { access: this.access, settings: config.sysctl }, { parent: this });
    this.hostFiles = [
      { path: "/etc/docker/daemon.json", content: this.daemon.fragment, kind: "managed-keys" },
      { path: this.kernel.path, content: this.kernel.content, kind: "file" },
    ];
    this.registerOutputs({ daemonJsonHash: this.daemon.fragmentHash, sysctlFile: this.kernel.path });
  }
}
