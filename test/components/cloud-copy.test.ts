/**
 * The cloud copy's config door, renderers and component: `backup.cloud` accepted and rejected
 * cases, the rclone config (round trip, credentials only from the secret, errors that name the
 * target and never the value), the units beside the backup units (exact ExecStart, AWS_CA_BUNDLE
 * unset, watched), and under mocks the secret-file command that writes the config (secret stdin,
 * logging none) before the units.
 */
import { describe, expect, it } from "vitest";
import { parseHostConfig } from "../../components/config";
import { backupPlan } from "../../components/plan/backup";
import { backupUnitSet } from "../../components/render/backup";
import { CLOUD_COPY_PATH, RCLONE_CONFIG_PATH, renderRcloneConfig, targetProtectionArgs, type CloudTarget } from "../../components/render/cloud-copy";
import { bundledScript, scriptCommand, sha256 } from "../../components/render/command";
import { parseUnit } from "../../components/render/systemd";
import { withValue } from "../fixtures";
import { expectConfigProblem, pinnedStackConfig, runStack, SENTINEL_SSH_KEY, waitsFor } from "../harness";

const S3_SECRET = "sentinel-s3-secret-4d1c";
const AZ_KEY = "sentinel-azure-account-key-77e0==";
const CREDS = JSON.stringify({ "s3-main": { accessKeyId: "AKIASENTINEL", secretAccessKey: S3_SECRET }, "az-main": { accountKey: AZ_KEY } });

const CLOUD = {
  targets: [
    { name: "s3-main", s3: { region: "eu-central-1", bucket: "dgx-backups", storageClass: "STANDARD_IA" }, protection: "versioning" },
    { name: "az-main", azure: { account: "dgxbackups", container: "sark", accessTier: "Cool" }, prefix: "dgx/sark", protection: "backup-dir" },
  ],
};

/** The real sark stack with a cloud section. */
const withCloud = (cloud: unknown = CLOUD) => withValue(pinnedStackConfig("sark"), "backup.cloud", cloud);
const parse = (v: Record<string, unknown>) => parseHostConfig(v, { source: "Pulumi.sark.yaml" });

describe("backup.cloud: the config door", () => {
  it("accepts S3 and Azure targets, with the defaults filled in", () => {
    const c = parse(withCloud()).backup!.cloud!;
    expect(c.targets[0]).toEqual({
      name: "s3-main",
      s3: { provider: "AWS", region: "eu-central-1", bucket: "dgx-backups", storageClass: "STANDARD_IA" },
      protection: "versioning",
    });
    expect(c.schedules).toEqual({ drill: "*-*-22 06:00:00" });
    expect(c.drillScratch).toBe("/var/lib/dgx-storage/cloud-drill");
  });

  it.each([
    [
      "both s3 and azure",
      "backup.cloud.targets.0",
      { name: "x1", s3: { region: "r1", bucket: "bkt" }, azure: { account: "acct1", container: "c-1" }, protection: "versioning" },
      "exactly one of `s3` or `azure`",
    ],
    ["neither", "backup.cloud.targets.0", { name: "x1", protection: "versioning" }, "exactly one of `s3` or `azure`"],
    ["a typo", "backup.cloud.targets.0.s3.bucekt", { name: "x1", s3: { region: "r1", bucket: "bkt", bucekt: "b" }, protection: "versioning" }, "unknown key"],
    [
      "GLACIER",
      "backup.cloud.targets.0.s3.storageClass",
      { name: "x1", s3: { region: "r1", bucket: "bkt", storageClass: "GLACIER" }, protection: "versioning" },
      "STANDARD",
    ],
    [
      "the Archive tier",
      "backup.cloud.targets.0.azure.accessTier",
      { name: "x1", azure: { account: "acct1", container: "c-1", accessTier: "Archive" }, protection: "versioning" },
      "Hot",
    ],
    ["no protection", "backup.cloud.targets.0.protection", { name: "x1", s3: { region: "r1", bucket: "bkt" } }, "versioning"],
    [
      "a bad bucket",
      "backup.cloud.targets.0.s3.bucket",
      { name: "x1", s3: { region: "r1", bucket: "Bad_Bucket" }, protection: "versioning" },
      "S3 bucket name",
    ],
    ["a scratch under /var/tmp", "backup.cloud.drillScratch", undefined, "a directory outside /tmp and /var/tmp"],
    [
      "a '..' prefix",
      "backup.cloud.targets.0.prefix",
      { name: "x1", s3: { region: "r1", bucket: "bkt" }, prefix: "a/../b", protection: "versioning" },
      "no '.' or '..' segment",
    ],
  ])("rejects %s", (_what, key, target, text) => {
    expectConfigProblem(withCloud(target ? { targets: [target] } : { ...CLOUD, drillScratch: "/var/tmp/drill" }), key, text);
  });

  it("rejects a target name listed twice and a drill scratch inside the repository", () => {
    const twice = { targets: [CLOUD.targets[0], { ...CLOUD.targets[1], name: "s3-main" }] };
    expectConfigProblem(withCloud(twice), "backup.cloud.targets.1.name", "a target name listed once (it is already at [0])");
    expectConfigProblem(
      withCloud({ ...CLOUD, drillScratch: "/mnt/borg-backup/scratch" }),
      "backup.cloud.drillScratch",
      "a directory apart from the repository /mnt/borg-backup",
    );
  });

  it("asks for the secret cloudCredentials when the section is there", () => {
    expect(() => parseHostConfig(withCloud(), { source: "Pulumi.sark.yaml", secretsPresent: ["sshPrivateKey", "borgPassphrase", "chromaToken"] })).toThrow(
      /cloudCredentials: \(missing\) secret, required with backup.cloud/,
    );
    expect(() =>
      parseHostConfig(withCloud(), { source: "Pulumi.sark.yaml", secretsPresent: ["sshPrivateKey", "borgPassphrase", "chromaToken", "cloudCredentials"] }),
    ).not.toThrow();
  });
});

/** rclone's INI back into sections (what rclone's config parser reads). */
function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let cur: Record<string, string> | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) out[head[1]!] = cur = {};
    else {
      const m = /^(\w+) = (.*)$/.exec(line)!;
      cur![m[1]!] = m[2]!;
    }
  }
  return out;
}

describe("the copy's protection arguments", () => {
  const s3 = { region: "eu-central-1", bucket: "b", provider: "AWS" };
  const az = { account: "acct", container: "c" };
  it("S3 with versioning or object-lock: --versioned (the job asks the bucket); backup-dir: its dated prefix; Azure with versioning: nothing to ask", () => {
    const t = (p: CloudTarget["protection"], where: Pick<CloudTarget, "s3" | "azure">): CloudTarget => ({
      name: "t1",
      prefix: "sark",
      protection: p,
      ...where,
    });
    expect(targetProtectionArgs(t("versioning", { s3 }))).toEqual(["--versioned"]);
    expect(targetProtectionArgs(t("object-lock", { s3 }))).toEqual(["--versioned"]);
    expect(targetProtectionArgs(t("backup-dir", { s3 }))).toEqual(["--backup-dir", "t1:b/sark/replaced"]);
    expect(targetProtectionArgs(t("versioning", { azure: az }))).toEqual([]);
    expect(targetProtectionArgs(t("object-lock", { azure: az }))).toEqual([]);
    expect(targetProtectionArgs(t("backup-dir", { azure: az }))).toEqual(["--backup-dir", "t1:c/sark/replaced"]);
  });
});

describe("the rclone config", () => {
  const plan = backupPlan("sark", parse(withCloud()).backup!).cloud!;

  it("round trip: one remote per target, keys from the secret, path-style only with an endpoint", () => {
    expect(parseIni(renderRcloneConfig(plan.targets, CREDS))).toEqual({
      "s3-main": {
        type: "s3",
        provider: "AWS",
        access_key_id: "AKIASENTINEL",
        secret_access_key: S3_SECRET,
        region: "eu-central-1",
        force_path_style: "false",
        storage_class: "STANDARD_IA",
        no_check_bucket: "true",
      },
      "az-main": { type: "azureblob", account: "dgxbackups", key: AZ_KEY, access_tier: "Cool" },
    });
    const withEndpoint: CloudTarget = {
      name: "minio",
      prefix: "p",
      protection: "backup-dir",
      s3: { provider: "Minio", endpoint: "http://127.0.0.1:9000", region: "us-east-1", bucket: "b1" },
    };
    expect(parseIni(renderRcloneConfig([withEndpoint], JSON.stringify({ minio: { accessKeyId: "a", secretAccessKey: "b" } }))).minio).toMatchObject({
      endpoint: "http://127.0.0.1:9000",
      force_path_style: "true",
    });
  });

  it.each([
    ["not JSON", "{nope", "cloudCredentials: not valid JSON (the value is not shown)"],
    [
      "a missing target",
      JSON.stringify({ "s3-main": { accessKeyId: "a", secretAccessKey: S3_SECRET } }),
      'cloudCredentials: no entry for the target az-main (expected {"accountKey": "..."})',
    ],
    [
      "a missing field",
      JSON.stringify({ "s3-main": { accessKeyId: "a" }, "az-main": { accountKey: AZ_KEY } }),
      "cloudCredentials: target s3-main: secretAccessKey is missing (a string)",
    ],
    [
      "a wrong field",
      JSON.stringify({ "s3-main": { accessKeyId: "a", secretAccessKey: S3_SECRET }, "az-main": { sasUrl: AZ_KEY } }),
      "cloudCredentials: target az-main: unknown field(s) sasUrl (expected accountKey)",
    ],
    [
      "an unknown target",
      JSON.stringify({ "s3-main": { accessKeyId: "a", secretAccessKey: S3_SECRET }, "az-main": { accountKey: AZ_KEY }, other: {} }),
      "cloudCredentials: entries for targets that backup.cloud.targets does not list: other",
    ],
    [
      "a line break",
      JSON.stringify({ "s3-main": { accessKeyId: "a", secretAccessKey: `${S3_SECRET}\n[x]` }, "az-main": { accountKey: AZ_KEY } }),
      "cloudCredentials: target s3-main: secretAccessKey must be one non-empty line without surrounding spaces",
    ],
  ])("refuses %s, naming the target and field, never the value", (_what, creds, message) => {
    let err = "";
    try {
      renderRcloneConfig(plan.targets, creds);
    } catch (e) {
      err = (e as Error).message;
    }
    expect(err).toBe(message);
    expect(err).not.toContain(S3_SECRET);
    expect(err).not.toContain(AZ_KEY);
  });
});

describe("the cloud units", () => {
  const plan = backupPlan("sark", parse(withCloud()).backup!);
  const set = backupUnitSet(plan);
  const file = (p: string) => set.files.find((f) => f.path === p)!.content;

  it("a copy per target started by the check job's success (no timer of its own), a drill per target on its timer, cloud-copy.sh installed beside borg-run.sh", () => {
    expect(set.enable.filter((u) => u.includes("cloud"))).toEqual(["dgx-backup-clouddrill-s3-main.timer", "dgx-backup-clouddrill-az-main.timer"]);
    expect(set.files.map((f) => f.path).filter((p) => p.includes("dgx-backup-cloud-"))).toEqual([
      "/etc/systemd/system/dgx-backup-cloud-s3-main.service",
      "/etc/systemd/system/dgx-backup-cloud-az-main.service",
    ]);
    const check = Object.fromEntries(parseUnit(file("/etc/systemd/system/dgx-backup-check.service")).map(([n, e]) => [n, e]));
    expect(check.Unit!.filter(([k]) => k === "OnSuccess")).toEqual([
      ["OnSuccess", "dgx-backup-cloud-s3-main.service"],
      ["OnSuccess", "dgx-backup-cloud-az-main.service"],
    ]);
    // only the weekly check starts the copies: not the monthly --verify-data, nor any other job
    expect(set.files.filter((f) => f.path.startsWith("/etc/systemd/") && f.content.includes("OnSuccess=")).map((f) => f.path)).toEqual([
      "/etc/systemd/system/dgx-backup-check.service",
    ]);
    expect(set.files.find((f) => f.path === CLOUD_COPY_PATH)).toEqual({ path: CLOUD_COPY_PATH, mode: "0755", content: bundledScript("cloud-copy") });
  });

  it("the copy service: exact ExecStart (versioning: --versioned, the bucket asked first; backup-dir: a dated prefix), AWS_CA_BUNDLE unset, network, no credential", () => {
    const s3 = parseUnit(file("/etc/systemd/system/dgx-backup-cloud-s3-main.service"));
    const service = Object.fromEntries(s3.map(([n, e]) => [n, e]));
    expect(service.Service!.filter(([k]) => k === "ExecStart" || k === "UnsetEnvironment")).toEqual([
      ["UnsetEnvironment", "AWS_CA_BUNDLE"],
      [
        "ExecStart",
        `/bin/bash ${CLOUD_COPY_PATH} --lock-wait 544320 --repo /mnt/borg-backup --host sark --config ${RCLONE_CONFIG_PATH} copy s3-main s3-main:dgx-backups/sark/repo --versioned`,
      ],
    ]);
    expect(service.Unit).toContainEqual(["After", "network-online.target"]);
    const az = file("/etc/systemd/system/dgx-backup-cloud-az-main.service");
    expect(az).toContain(`copy az-main az-main:sark/dgx/sark/repo --backup-dir az-main:sark/dgx/sark/replaced\n`);
    expect(file("/etc/systemd/system/dgx-backup-clouddrill-az-main.service")).toContain(
      `drill az-main az-main:sark/dgx/sark/repo /var/lib/dgx-storage/cloud-drill --sample 200\n`,
    );
    expect(file("/etc/systemd/system/dgx-backup-clouddrill-s3-main.timer")).toContain("OnCalendar=*-*-22 06:00:00\n");
  });

  it("the watch alerts on a copy missed for a week and a half, or a drill for a month and a half", () => {
    const watch = file("/etc/systemd/system/dgx-backup-watch.service");
    expect(watch).toContain(`cloud-copy-s3-main=${7 * 86400 + 3.5 * 86400} cloud-drill-s3-main=${31 * 86400 + 15.5 * 86400}`);
  });
});

describe("sark with backup.cloud under mocks", () => {
  const run = () => runStack({ stack: "sark", config: withCloud(), secrets: { sshPrivateKey: SENTINEL_SSH_KEY, cloudCredentials: CREDS }, preview: false });

  it("writes the rclone config with secret-file.sh, the text on stdin only (secret, logging none), before the units", async () => {
    const r = await run();
    const c = r.byName("sark-backup-cloud-config");
    expect(c.inputs.create).toBe(scriptCommand("secret-file", ["apply", RCLONE_CONFIG_PATH], { sudo: true }));
    expect(c.inputs.delete).toBe(scriptCommand("secret-file", ["remove", RCLONE_CONFIG_PATH], { sudo: true }));
    const text = renderRcloneConfig(backupPlan("sark", parse(withCloud()).backup!).cloud!.targets, CREDS);
    expect(c.inputs.stdin).toBe(text);
    expect(c.secretPaths).toContain("stdin");
    expect(c.inputs.logging).toBe("none");
    expect(c.inputs.triggers).toEqual([RCLONE_CONFIG_PATH, sha256(text)]);
    expect(waitsFor(r, "sark-backup-units", "sark-backup-cloud-config")).toBe(true);
    // in no other input of any resource
    for (const reg of r.registrations) {
      const inputs = JSON.stringify({ ...reg.inputs, ...(reg.name === "sark-backup-cloud-config" ? { stdin: "", triggers: "" } : {}) });
      expect(inputs, reg.name).not.toContain(S3_SECRET);
      expect(inputs, reg.name).not.toContain(AZ_KEY);
    }
  });

  it("without the secret, the program stops with the config problem", async () => {
    await expect(runStack({ stack: "sark", config: withCloud(), secrets: { sshPrivateKey: SENTINEL_SSH_KEY }, preview: false })).rejects.toThrow(
      /cloudCredentials/,
    );
  });
});
