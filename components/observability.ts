/**
 * Observability of one host: node_exporter with Debian's smartmon and nvme collectors, the
 * static textfile series; on the manager Prometheus (scraping every host), its alerting rules,
 * Alertmanager (to the webhook, resolved notices included) and the storage console page. The
 * storage check and the backup jobs write their own textfile metrics (storage-alert.py,
 * borg-run.py): this component installs what reads them.
 */
import * as pulumi from "@pulumi/pulumi";
import type { HostConfig, ObservabilityConfig } from "./config";
import { hostCommand, type HostAccess } from "./host-command";
import type { HostFile } from "./plan/host";
import { managerFiles, observabilityPackages, staticTextfile } from "./plan/observability";
import { sha256 } from "./render/command";
import { HOST_PATHS } from "./render/host-paths";
import { ALERTMANAGER_YML, CONSOLE_FILE, PROMETHEUS_YML, RULES_FILE, STATIC_METRICS_FILE } from "./render/observability";

/** Where DgxHost writes the webhook URL for Alertmanager (root-only, from the secret on stdin). */
export const ALERTMANAGER_WEBHOOK_FILE = `${HOST_PATHS.etc}/alertmanager-webhook`;

/** The dead-man's-switch URL borg-run.sh GETs after a successful run (root-only, from the `heartbeatUrl` secret). */
export const HEARTBEAT_FILE = `${HOST_PATHS.etc}/heartbeat-url`;

export interface ObservabilityArgs {
  /** How to reach the host. */
  readonly access: HostAccess;
  /** The host's validated config (its `observability`, `monitoring`, `backup`, `capacity`). */
  readonly config: HostConfig;
  /** The `observability` section. */
  readonly observability: ObservabilityConfig;
  /** The command that writes ALERTMANAGER_WEBHOOK_FILE; absent: Alertmanager has no receiver URL. */
  readonly webhook?: pulumi.Resource;
  /** A hash of the webhook URL (a secret): a changed URL installs Alertmanager's config again. */
  readonly webhookTrigger?: pulumi.Input<string>;
  /** What every command waits for: the host's own packages (one apt at a time). */
  readonly after: readonly pulumi.Resource[];
  /** The start day of the capacity projection when `capacity.asOf` is not set. @default today */
  readonly today?: Date;
}

/** node_exporter and the textfile on every host; Prometheus and Alertmanager on the manager. */
export class Observability extends pulumi.ComponentResource {
  /** apt-ensure.sh of the observability packages. */
  public readonly packages: pulumi.Resource;
  /** The static textfile (backup maximum ages, capacity dates) and node_exporter enabled. */
  public readonly textfile: pulumi.Resource;
  /** The manager's checked configs, installed; absent on a scraped-only host. */
  public readonly prometheus?: pulumi.Resource;
  /** What the host receives, for synth. */
  public readonly hostFiles: readonly HostFile[];

  constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:Observability", name, {}, opts);
    const { access, config, observability: obs } = args;
    const pkgs = observabilityPackages(obs);
    this.packages = hostCommand(
      `${name}-packages`,
      { access, script: "apt-ensure", createArgs: pkgs, triggers: [pkgs.join(" ")] },
      { parent: this, dependsOn: [...args.after] },
    );
    const textfile = staticTextfile(config, args.today ?? new Date());
    this.textfile = hostCommand(
      `${name}-textfile`,
      { access, script: "observability-config", createArgs: ["textfile", STATIC_METRICS_FILE, textfile], deleteArgs: ["remove"], triggers: [sha256(textfile)] },
      { parent: this, dependsOn: [this.packages] },
    );
    const hostFiles: HostFile[] = [{ path: STATIC_METRICS_FILE, content: textfile, kind: "file" }];
    const files = managerFiles(config, obs, args.webhook !== undefined);
    if (files) {
      this.prometheus = hostCommand(
        `${name}-prometheus`,
        {
          access,
          script: "observability-config",
          createArgs: ["apply", files.prometheus, files.rules, files.alertmanager, files.console, ALERTMANAGER_WEBHOOK_FILE],
          deleteArgs: ["remove"],
          // the rendered texts and the URL's hash: this command reads the URL from its file
          triggers: [
            sha256(files.prometheus + files.rules + files.alertmanager + files.console),
            ...(args.webhookTrigger !== undefined ? [args.webhookTrigger] : []),
          ],
        },
        { parent: this, dependsOn: [this.packages, ...(args.webhook ? [args.webhook] : [])] },
      );
      hostFiles.push(
        { path: PROMETHEUS_YML, content: files.prometheus, kind: "file" },
        { path: RULES_FILE, content: files.rules, kind: "file" },
        { path: ALERTMANAGER_YML, content: files.alertmanager, kind: "file" },
        { path: CONSOLE_FILE, content: files.console, kind: "file" },
      );
    }
    this.hostFiles = hostFiles;
    this.registerOutputs({});
  }
}
