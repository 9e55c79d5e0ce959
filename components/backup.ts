/**
 * Backups with borg (plan phase 4): the local repository, the schedules as systemd
 * units (daily and hourly series, check, verify-data, restore drill), and the weekly off-site
 * copy into a repository on the other host, whose receiving side this stack installs there too.
 *
 * Off-site without circular stack references: each stack owns its own copy on the peer. The
 * `offsite` block says how Pulumi reaches the peer's management SSH (same operator key, the
 * peer's host key pinned) and how this host reaches it for borg traffic. This host makes its key
 * pair (`borg-repo.sh ssh-key`, the public key on stdout), then a command on the PEER installs a
 * system user whose only allowed command is `borg serve --append-only --restrict-to-path
 * <repoDir>`. One `pulumi up` per stack, in any order.
 */
import * as pulumi from "@pulumi/pulumi";
import type { BackupConfig } from "./config";
import { hostCommand, unitSetCommand, type HostAccess } from "./host-command";
import { backupPlan, OFFSITE_KEY_PATH } from "./plan/backup";
import { unitSetFiles, type HostFile } from "./plan/host";
import { BORG_ETC_DIR, backupUnitSet, offsiteAuthorizedKey, offsiteRepoUrl, repoSetupArgs } from "./render/backup";
import { RCLONE_CONFIG_PATH, renderRcloneConfig } from "./render/cloud-copy";
import { bundledScript, sha256 } from "./render/command";
import { HOST_PATHS } from "./render/host-paths";
import type { UnitSet } from "./render/systemd";

/** The install-units.sh set name of the backup units. */
export const BACKUP_SET = "backup";
export interface BackupArgs {
  /** How to reach this host. */
  readonly access: HostAccess;
  /** Host name: the archive prefix (`sark-daily-...`). */
  readonly host: string;
  /** The validated `backup` section (daily paths already include the automatic ones). */
  readonly backup: BackupConfig;
  /** The repository passphrase, a secret: on stdin only, into a 0600 file that BORG_PASSCOMMAND reads. */
  readonly passphrase: pulumi.Input<string>;
  /**
   * The secret `cloudCredentials` (JSON by target name): on stdin only, into the root-only
   * rclone config. Required with `backup.cloud`. @default none
   */
  readonly cloudCredentials?: pulumi.Input<string>;
  /**
   * The command that writes the alert webhook file (the host's): the units run after
   * it, so the first alert finds the file. This component never writes that file. @default none
   */
  readonly alertWebhook?: pulumi.Resource;
  /** What the repository set-up waits for (the host's packages: borg). Set on each child. */
  readonly after: readonly pulumi.Resource[];
}

/** What `status` reports. */
export interface BackupStatus {
  readonly repository: string;
  readonly passFile: string;
  readonly keyExport: string;
  readonly timers: readonly string[];
  readonly statusDir: string;
  /** The ssh:// URL of the off-site repository; absent without one. */
  readonly offsite?: string;
}

/** The borg repository, schedules and off-site copy of one host. */
export class Backup extends pulumi.ComponentResource {
  /** `borg-repo.sh apply`: pass file, `borg init`, key export. */
  public readonly repo: pulumi.Resource;
  /** `borg-repo.sh ssh-key` on this host. */
  public readonly sshKey?: pulumi.Resource;
  /** `borg-repo.sh receive` on the peer. */
  public readonly receive?: pulumi.Resource;
  /** The backup unit set (install-units.sh). */
  public readonly units: pulumi.Resource;
  /** secret-file.sh writing the rclone config of `backup.cloud`; absent without it. */
  public readonly cloudConfig?: pulumi.Resource;
  /** borg-schedules.sh: backup jobs made by hand on the same repository, reported or disabled. */
  public readonly existingJobs: pulumi.Resource;
  /** What borg-schedules.sh found, a line each (`<where>: <what>`); empty when nothing runs borg there. */
  public readonly existingJobsFound: pulumi.Output<string[]>;
  /** The unit set installed (for review and the drift probe). */
  public readonly unitSet: UnitSet;
  /** The off-site public key (what the peer's authorized_keys holds, restricted); absent without off-site. */
  public readonly offsitePublicKey?: pulumi.Output<string>;
  /** The local repository path. */
  public readonly repository: string;
  /** The exported repository key on the host (keep a copy elsewhere). */
  public readonly keyExport: string;
  public readonly status: pulumi.Output<BackupStatus>;
  /** What the host receives, for synth. */
  public readonly hostFiles: readonly HostFile[];

  constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dgx-storage:index:Backup", name, {}, opts);
    const { access, backup } = args;
    const child = { parent: this, dependsOn: [...args.after] };
    const plan = backupPlan(args.host, backup);
    const repoScript = sha256(bundledScript("borg-repo"));
    const passphrase = pulumi.secret(args.passphrase);

    // No delete step: `pulumi destroy` never removes a repository, its pass file or its key.
    this.repo = hostCommand(
      `${name}-repo`,
      {
        access,
        script: "borg-repo",
        createArgs: repoSetupArgs(plan),
        triggers: [repoScript, plan.repoName, plan.repoPath],
        secretStdin: passphrase.apply((p) => `${p}\n`),
      },
      child,
    );

    const before: pulumi.Resource[] = [this.repo];
    const offsite = plan.offsite;
    const o = backup.offsite;
    if (offsite && o) {
      const sshKey = hostCommand(
        `${name}-ssh-key`,
        { access, script: "borg-repo", createArgs: ["ssh-key", OFFSITE_KEY_PATH], triggers: [repoScript, OFFSITE_KEY_PATH] },
        child,
      );
      this.sshKey = sshKey;
      this.offsitePublicKey = sshKey.stdout.apply((out) => {
        const key = (out ?? "").trim().split("\n").pop() ?? "";
        if (key === "") throw new Error(`${name}-ssh-key: borg-repo.sh ssh-key printed no public key`);
        return key;
      });
      const line = this.offsitePublicKey.apply((k) => offsiteAuthorizedKey(k, o.repoDir));
      // the peer's management SSH: the operator's key, the peer's own pinned host key
      const peer: HostAccess = {
        connection: { host: o.ssh.address, port: o.ssh.port, user: o.ssh.user, privateKey: access.connection.privateKey, hostKey: o.ssh.hostKey },
        sudo: o.ssh.user !== "root",
      };
      this.receive = hostCommand(
        `${name}-offsite-receive`,
        {
          access: peer,
          script: "borg-repo",
          createArgs: ["receive", o.user, o.repoDir, line],
          // the line carries the key and the path: a new key or directory installs again
          triggers: [repoScript, line],
        },
        { ...child, dependsOn: [...args.after, sshKey] },
      );
      before.push(sshKey, this.receive);
    }

    if (plan.cloud) {
      const cloud = plan.cloud;
      if (args.cloudCredentials === undefined)
        throw new Error("backup.cloud needs the secret cloudCredentials (pulumi config set --secret cloudCredentials < creds.json)");
      // rendered inside the secret: the config holds the keys, and a problem names target and field only
      const text = pulumi.secret(args.cloudCredentials).apply((c) => renderRcloneConfig(cloud.targets, c));
      this.cloudConfig = hostCommand(
        `${name}-cloud-config`,
        {
          access,
          script: "secret-file",
          createArgs: ["apply", RCLONE_CONFIG_PATH],
          deleteArgs: ["remove", RCLONE_CONFIG_PATH],
          // a hash of the text, still a secret: new keys or targets write it again, the state shows neither
          triggers: [RCLONE_CONFIG_PATH, text.apply((t) => sha256(t))],
          secretStdin: text,
        },
        child,
      );
      before.push(this.cloudConfig);
    }

    const unitSet = backupUnitSet(plan);
    // a timer may fire as soon as it is enabled: repository, off-site key and alert file first
    this.units = unitSetCommand(`${name}-units`, access, BACKUP_SET, unitSet, {
      ...child,
      dependsOn: [...args.after, ...before, ...(args.alertWebhook ? [args.alertWebhook] : [])],
    });
    // after the units: with `disable`, the old schedule stops only once this one is installed
    const jobArgs = [backup.existingJobs, plan.repoPath];
    const existing = hostCommand(
      `${name}-existing-jobs`,
      { access, script: "borg-schedules", createArgs: jobArgs, triggers: [sha256(jobArgs.join(" "))] },
      { ...child, dependsOn: [...args.after, this.units] },
    );
    this.existingJobs = existing;
    this.existingJobsFound = existing.stdout.apply((out) => (out ?? "").split("\n").filter((l) => l.trim() !== ""));
    this.unitSet = unitSet;
    this.repository = plan.repoPath;
    this.keyExport = `${BORG_ETC_DIR}/${plan.repoName}.key`;
    this.status = pulumi.output({
      repository: plan.repoPath,
      passFile: `${BORG_ETC_DIR}/${plan.repoName}.pass`,
      keyExport: this.keyExport,
      timers: unitSet.enable,
      statusDir: `${HOST_PATHS.var}/backup-status`,
      ...(offsite ? { offsite: offsiteRepoUrl(offsite) } : {}),
    });
    this.hostFiles = unitSetFiles(unitSet);
    this.registerOutputs({ status: this.status, ...(this.offsitePublicKey ? { offsitePublicKey: this.offsitePublicKey } : {}) });
  }
}
