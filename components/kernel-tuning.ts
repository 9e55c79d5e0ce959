import * as pulumi from "@pulumi/pulumi";
import { hostCommand, type HostAccess } from "./host-command";
import { sha256 } from "./render/command";
import { renderSysctl } from "./render/sysctl";

export interface KernelTuningArgs {
  /** How to reach the host. */
  readonly access: HostAccess;
  /** Kernel parameters, e.g. `{ "vm.swappiness": 10 }`. */
  readonly settings: Readonly<Record<string, string | number>>;
  /**
   * The sysctl.d file. 90- sorts after the distribution's and most packages' files, so ours wins
   * unless an operator adds a later one (then the read-back fails and says so).
   * @default "/etc/sysctl.d/90-dgx-storage.conf"
   */
  readonly path?: string;
  /** What the apply waits for. Set on the child itself. */
  readonly after: readonly pulumi.Resource[];
}

/** Kernel parameters persisted under /etc/sysctl.d, applied with `sysctl --system`, read back. */
export class KernelTuning extends pulumi.ComponentResource {
  public readonly path: string;
  /** The file's content. */
  public readonly content: string;
  public readonly apply: pulumi.Resource;

  constructor(name: string, args: KernelTuningArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:KernelTuning", name, {}, opts);
    this.path = args.path ?? "/etc/sysctl.d/90-dgx-storage.conf";
    this.content = renderSysctl(args.settings);
    this.apply = hostCommand(
      `${name}-apply`,
      {
        access: args.access,
        script: "sysctl-apply",
        createArgs: ["apply", this.path, this.content],
        deleteArgs: ["remove", this.path],
        triggers: [sha256(this.content)],
      },
      { parent: this, dependsOn: [...args.after] },
    );
    this.registerOutputs({ path: this.path });
  }
}
