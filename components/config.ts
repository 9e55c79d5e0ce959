/**
 * The one door for stack config.
 *
 * Stack YAML (or the Pulumi runtime's config map) -> `parseHostConfig` -> a validated, frozen
 * `HostConfig`. Nothing downstream reads `pulumi.Config` again or re-validates what is checked
 * here. Every problem is reported at once, each with the stack file, the key path, the bad
 * value and what was expected, before a single resource is registered.
 *
 * No `@pulumi/pulumi` import here: the door is a pure function so that tests, `npm run synth`
 * and the Pulumi program all go through the same code.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { parse as parseYaml } from "yaml";

/** The Pulumi project name, which is also the config namespace (`dgx-storage:<key>`). */
export const PROJECT = "dgx-storage";

/**
 * Stack config keys that hold secrets. They are never parsed into `HostConfig`: the program
 * reads them with `requireSecret` (or `getSecret`), so they stay wrapped as Pulumi secrets end
 * to end.
 */
export const SECRET_KEYS = ["sshPrivateKey", "alertWebhook", "borgPassphrase"] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/**
 * Secret keys a stack may leave unset: without `alertWebhook`, alerts go to the journal only;
 * `borgPassphrase` is required only with a `backup` section (checked by `parseHostConfig`).
 * Every other key of `SECRET_KEYS` is required when the caller says which secrets are set.
 */
const OPTIONAL_SECRET_KEYS: readonly SecretKey[] = ["alertWebhook", "borgPassphrase"];

/**
 * What a secret's value must look like. `parseHostConfig` never sees secret values: the caller
 * that holds them (`parseStackConfig`) runs `checkSecretFormat` and passes the names of the
 * invalid ones in `ParseOptions.invalidSecrets`, so the problem is listed with the others, value
 * unshown.
 */
const SECRET_FORMATS: Readonly<Partial<Record<SecretKey, { readonly test: RegExp; readonly expected: string }>>> = {
  // one line: the file on the host holds exactly this URL, read by storage-alert.sh and borg-run.sh
  alertWebhook: { test: /^https?:\/\/[^\s'"\\`$]+$/, expected: "an http(s) URL on one line (e.g. https://ntfy.sh/<topic>)" },
  // borg-repo.sh reads one line from stdin into the pass file; a short passphrase guards little
  borgPassphrase: { test: /^[^\n\r]{12,}$/, expected: "a passphrase of at least 12 characters on one line" },
};

/** The names of the secrets whose values do not have the form `SECRET_FORMATS` expects. */
export function checkSecretFormat(values: Readonly<Partial<Record<SecretKey, string>>>): SecretKey[] {
  return SECRET_KEYS.filter((k) => {
    const v = values[k];
    const f = SECRET_FORMATS[k];
    return v !== undefined && f !== undefined && !f.test.test(v.trim());
  });
}

/**
 * Placeholder for a host key that nobody has recorded yet. `pulumi preview` accepts it (with a
 * warning); `pulumi up` refuses it, because an unpinned connection would trust any machine that
 * answers on the address.
 */
export const UNPINNED_HOST_KEY = "unpinned";

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

const hostName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, "a lower-case host name: letters, digits and '-', starting with a letter");

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const dnsName = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const address = z
  .string()
  .refine((s) => ipv4.test(s) || (dnsName.test(s) && !/^[\d.]+$/.test(s)), {
    message: "an IPv4 address or a DNS name",
  });

const port = z.number().int("a whole number").min(1, "a port from 1 to 65535").max(65535, "a port from 1 to 65535");

/** An absolute, normalised POSIX path without `..`, `//` or a trailing slash. */
export const absolutePath = z
  .string()
  .refine((p) => p.startsWith("/"), { message: "an absolute path (starting with '/')" })
  .refine((p) => p === "/" || (!p.endsWith("/") && path.posix.normalize(p) === p), {
    message: "a normalised path (no '..', '.', '//' or trailing '/')",
  })
  .refine((p) => !/[\s'"\\$`]/.test(p), { message: "a path without whitespace, quotes, '\\', '$' or '`'" });

const posixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a POSIX user name");

const SSH_KEY_TYPES = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
] as const;

/**
 * An OpenSSH public host key line (`<type> <base64>`; a trailing comment is dropped), the form
 * `ssh-keyscan` prints and @pulumi/command's `connection.hostKey` expects.
 */
const hostKey = z
  .string()
  .transform((s) => s.trim())
  .refine(
    (s) => {
      if (s === UNPINNED_HOST_KEY) return true;
      const [type, blob] = s.split(/\s+/);
      if (!SSH_KEY_TYPES.includes(type as (typeof SSH_KEY_TYPES)[number]) || !blob) return false;
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return false;
      // The blob starts with the key type again (RFC 4253 string encoding): a cheap check that
      // catches a truncated or pasted-wrong key.
      const raw = Buffer.from(blob, "base64");
      const len = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
      return len > 0 && raw.subarray(4, 4 + len).toString("latin1") === type;
    },
    {
      message: `an OpenSSH public host key line such as 'ssh-ed25519 AAAA...' (from ssh-keyscan), or '${UNPINNED_HOST_KEY}' until it is recorded`,
    },
  )
  .transform((s) => (s === UNPINNED_HOST_KEY ? s : s.split(/\s+/).slice(0, 2).join(" ")));

/**
 * Cross-field rules run even when a field failed, so that one run reports every problem. Their
 * input may then be partly invalid: they only read it defensively.
 */
const EVEN_IF_INVALID = { when: () => true };

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

const hostSection = z.strictObject({
  /** Short name of the host; also the Pulumi stack name. */
  name: hostName,
  /** Address the operator's machine reaches the host on (SSH, Docker over SSH). */
  address,
  ssh: z.strictObject({
    user: posixUser,
    port: port.default(22),
    /** Pinned host key: every remote command refuses any other. */
    hostKey,
  }),
  /**
   * Run host commands through `sudo -n` (needed unless `ssh.user` is root).
   * @default true when ssh.user is not root
   */
  sudo: z.boolean().optional(),
});

const logSize = z.string().regex(/^[1-9]\d*[kmg]$/, "a size such as '100m' (digits then k, m or g)");

const daemonSection = z.strictObject({
  /** `storage-driver`. @default "overlay2" */
  storageDriver: z.enum(["overlay2", "btrfs", "zfs", "fuse-overlayfs", "vfs"]).default("overlay2"),
  /** `log-driver`. @default "json-file" */
  logDriver: z.enum(["json-file", "local", "journald", "syslog", "none"]).default("json-file"),
  /** `log-opts` for file-based drivers: bounded logs so containers cannot fill the disk. */
  logOpts: z
    .strictObject({
      maxSize: logSize.default("100m"),
      maxFile: z.number().int("a whole number").min(1, "at least 1").max(100, "at most 100").default(5),
    })
    .default({ maxSize: "100m", maxFile: 5 }),
  /**
   * `live-restore`: containers keep running while dockerd restarts. Docker refuses it on a
   * swarm node, so the door rejects it together with a swarm role.
   * @default false
   */
  liveRestore: z.boolean().default(false),
});

const dockerSection = z.strictObject({
  daemon: daemonSection.default(daemonSection.parse({})),
});

/** Known kernel parameters with their valid ranges; others must still be well-formed. */
const SYSCTL_RANGES: Record<string, [number, number]> = {
  // 0..200 since Linux 5.8 (Documentation/admin-guide/sysctl/vm.rst)
  "vm.swappiness": [0, 200],
  "vm.vfs_cache_pressure": [0, 1000],
  "vm.dirty_ratio": [0, 100],
  "vm.dirty_background_ratio": [0, 100],
};

const sysctlSection = z
  .record(
    z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$/, "a kernel parameter name such as 'vm.swappiness'"),
    z.union([z.number().int("a whole number"), z.string().regex(/^[\w .:/-]+$/, "a plain value")]),
  )
  .superRefine((rec, ctx) => {
    for (const [key, value] of Object.entries(rec)) {
      const range = SYSCTL_RANGES[key];
      if (!range) continue;
      if (typeof value !== "number" || value < range[0] || value > range[1]) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `a whole number from ${range[0]} to ${range[1]}`,
          input: value,
        });
      }
    }
  }, EVEN_IF_INVALID);

const dockerName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, "a Docker object name: letters, digits, '_', '.', '-'");

const swarmSection = z.strictObject({
  /** `manager` initialises the swarm; `worker` joins the manager's. */
  role: z.enum(["manager", "worker"]),
  /** Address other nodes reach this one on (the LAN address). */
  advertiseAddress: address,
  /** Worker only: the manager's stack, read through a StackReference (`org/project/stack`). */
  managerStack: z.string().regex(/^[\w.-]+\/[\w.-]+\/[\w.-]+$/, "a stack reference 'organization/project/stack'").optional(),
  /** Manager only: the attachable overlay network the services share. */
  network: z
    .strictObject({
      name: dockerName.default("optimized-swarm"),
      /** IPsec encryption of the data plane (see README: cost and ports). @default false */
      encrypted: z.boolean().default(false),
    })
    .optional(),
});

const volumeSection = z.strictObject({
  /** Docker volume name. */
  name: dockerName,
  /** The host that keeps it: must be this stack's host. */
  host: hostName,
  /** Bind-backed volume (`driver: local`, `type=none,o=bind,device=...`). */
  bind: z
    .strictObject({
      device: absolutePath,
      /** Owner of the device directory, `uid:gid`. @default "0:0" */
      owner: z.string().regex(/^\d{1,10}:\d{1,10}$/, "numeric 'uid:gid'").default("0:0"),
      /** Mode of the device directory. @default "0755" */
      mode: z.string().regex(/^0?[0-7]{3,4}$/, "an octal mode such as '0750'").default("0755"),
    })
    .optional(),
  /**
   * Holds data: protected from `pulumi destroy` and kept on the host if Pulumi ever deletes or
   * replaces it. @default true
   */
  data: z.boolean().default(true),
});

const migrationSection = z.strictObject({
  /** Name of the migration (its state file on the host is named after it). */
  name: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, "a lower-case name: letters, digits, '-'"),
  /** The service of this stack whose data moves; its bind mount of `source` moves to `destination`. */
  service: dockerName,
  source: absolutePath,
  destination: absolutePath,
  /** The filesystem the destination must be on (its mount point), checked before copying. */
  mount: absolutePath.optional(),
  /** Free space required beyond the source's size, in percent. @default 10 */
  marginPercent: z.number().int("a whole number").min(0, "0 or more").max(100, "at most 100").default(10),
  /** Seconds the service may take to become healthy on the destination. @default 300 */
  healthTimeout: z.number().int("a whole number").positive("a positive whole number").default(300),
  /** `borg`: archive the source first (needs the backup component on this host). @default "none" */
  snapshot: z.enum(["none", "borg"]).default("none"),
});

const duration = z.string().regex(/^\d+(ms|s|m|h)$/, "a duration such as '30s'");

const serviceSection = z.strictObject({
  /** The host that runs it: must be this stack's host. */
  host: hostName,
  /** Image with a pinned tag or digest (`latest` and untagged images are refused). */
  image: z
    .string()
    .regex(/^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/, "an image reference such as 'chromadb/chroma:0.6.3'")
    .refine((i) => /@sha256:/.test(i) || (/:[\w][\w.-]*$/.test(i.split("/").pop() ?? "") && !i.endsWith(":latest")), {
      message: "a pinned tag or digest, not 'latest' or no tag",
    }),
  /** Pull the image from its registry (false for an image built on the host). @default true */
  pull: z.boolean().default(true),
  /** Container name. @default the service's key */
  containerName: dockerName.optional(),
  command: z.array(z.string()).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name"), z.string()).default({}),
  ports: z
    .array(
      z.strictObject({
        published: port,
        target: port,
        protocol: z.enum(["tcp", "udp"]).default("tcp"),
        /** Host address to publish on. @default "0.0.0.0" */
        ip: z.string().regex(ipv4, "an IPv4 address").default("0.0.0.0"),
      }),
    )
    .default([]),
  mounts: z
    .array(
      z.strictObject({
        /** A volume declared on this host, or an absolute host path (a bind mount). */
        source: z.union([absolutePath, dockerName]),
        /** Path inside the container. */
        target: absolutePath,
        readOnly: z.boolean().default(false),
      }),
    )
    .default([]),
  /** GPUs reserved through the NVIDIA runtime: a count, or specific GPUs by id. */
  gpus: z
    .strictObject({
      count: z.number().int("a positive whole number").positive("a positive whole number").optional(),
      deviceIds: z.array(z.string().regex(/^[\w-]+$/, "a GPU index or UUID")).min(1, "at least one GPU id").optional(),
    })
    .refine((g) => (g.count === undefined) !== (g.deviceIds === undefined), { message: "either count or deviceIds, not both or neither" })
    .optional(),
  /** Shared memory in MiB (vLLM needs more than Docker's 64 MiB). */
  shmSizeMb: z.number().int("a whole number").positive("a positive whole number").optional(),
  healthcheck: z
    .strictObject({
      test: z.array(z.string()).min(2, "['CMD', ...] or ['CMD-SHELL', '...']").refine((t) => t[0] === "CMD" || t[0] === "CMD-SHELL", {
        message: "a test starting with CMD or CMD-SHELL",
      }),
      interval: duration.default("30s"),
      timeout: duration.default("10s"),
      retries: z.number().int("a whole number").min(1, "at least 1").default(3),
      startPeriod: duration.default("30s"),
    })
    .optional(),
  /**
   * Seconds the switch to a new container waits for it to be healthy (its health check; without
   * one, running for 10 s) before it hands the service back to the old one. @default 120
   */
  waitTimeout: z.number().int("a whole number").positive("a positive whole number").default(120),
  /**
   * Seconds a stopping container gets between SIGTERM and SIGKILL: the old one at the switch, and
   * this one when Pulumi replaces or deletes it (the Docker provider's `destroy_grace_seconds`,
   * whose default 0 kills at once). @default 30
   */
  stopGraceSeconds: z.number().int("a whole number").min(1, "at least 1").max(600, "at most 600").default(30),
  /** Attach to the swarm's overlay network. @default true */
  overlay: z.boolean().default(true),
});

const diskSection = z.strictObject({
  /** Role of the disk in the plan, e.g. primary or backup. */
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, "a lower-case name"),
  /** Mount point whose usage is measured. */
  mount: absolutePath,
  /** Size in TB, as the plan states it. */
  sizeTB: z.number().positive("a size above 0"),
  /** Used TB at the time of the plan. */
  usedTB: z.number().nonnegative("0 or more"),
});

const isoDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "a date 'YYYY-MM-DD'")
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), { message: "a real calendar date 'YYYY-MM-DD'" });

const capacitySection = z
  .strictObject({
    disks: z.array(diskSection).min(1, "at least one disk"),
    /** Expected growth of used space per year, as a fraction (0.2 = 20%). */
    annualGrowth: z.number().min(0, "0 or more").max(10, "at most 10 (1000%)"),
    /**
     * How `annualGrowth` applies (components/render/capacity.ts): `compound` grows the used bytes
     * by the rate each year; `linear` adds rate x today's usage each year (the plan's
     * +20/+40/+60% table); `points` adds rate x 100 percentage points a year.
     * @default "compound"
     */
    model: z.enum(["compound", "linear", "points"]).default("compound"),
    /**
     * The day the disks' `usedTB` figures were read: the start of the projection from config.
     * Fixed, so the stack outputs and synth's chart do not change from one day to the next.
     * @default the day the program runs
     */
    asOf: isoDay.optional(),
  })
  .superRefine((c, ctx) => {
    (Array.isArray(c.disks) ? c.disks : []).forEach((d, i) => {
      if (typeof d?.usedTB === "number" && typeof d.sizeTB === "number" && d.usedTB > d.sizeTB) {
        ctx.addIssue({ code: "custom", path: ["disks", i, "usedTB"], message: `at most sizeTB (${d.sizeTB})`, input: d.usedTB });
      }
    });
  }, EVEN_IF_INVALID);

const maintenanceSection = z.strictObject({
  /** Plan phase 5.1, "Enable TRIM for SSD optimization". */
  fstrim: z
    .strictObject({
      /** Mount points trimmed once on apply (fstrim trims whole filesystems: mount points, not directories). @default [] */
      mounts: z.array(absolutePath).default([]),
      /** Enable util-linux's weekly `fstrim.timer` (it trims every mounted filesystem that supports discard). @default true */
      timer: z.boolean().default(true),
    })
    .default({ mounts: [], timer: true }),
});

const percent = z.number().gt(0, "a percentage above 0").max(100, "a percentage of at most 100");

/** A warning and a critical level, warning at most critical. */
const levels = (warning: number, critical: number) =>
  z
    .strictObject({
      warning: percent.default(warning),
      critical: percent.default(critical),
    })
    .refine((l) => !(typeof l.warning === "number" && typeof l.critical === "number" && l.warning > l.critical), {
      message: "warning at most critical",
      path: ["warning"],
    });

/** fio's size syntax: digits and an optional K, M, G or T suffix. */
const fioSize = z.string().regex(/^[1-9]\d*[KMGT]?$/, "a size in fio's syntax such as '4G' or '512M'");

const monitoringSection = z.strictObject({
  /** Data mount points (or directories: their filesystem) checked for usage and read live by `df` for capacity. */
  mounts: z.array(absolutePath).min(1, "at least one data mount"),
  /** NVMe devices smartd watches (the plan's `smartctl -a /dev/nvmeXn1` lines). @default [] (no smartd config) */
  nvmeDevices: z.array(z.string().regex(/^\/dev\/[A-Za-z0-9_./:-]+$/, "a device path such as '/dev/nvme0n1'")).default([]),
  /**
   * Accept a smartd config whose devices this host does not have (test hosts without NVMe): the
   * syntax is still checked by smartd, and smartd is not restarted on it.
   * @default false
   */
  allowMissingDevices: z.boolean().default(false),
  /** smartd alerts when a device is above this temperature, °C (the plan: 70). @default 70 */
  temperatureCriticalC: z.number().int("a whole number of degrees").min(1, "at least 1").max(119, "at most 119").default(70),
  /** Used space per data mount, percent (the plan: alert above 80%). @default { warning: 80, critical: 90 } */
  usage: levels(80, 90).default({ warning: 80, critical: 90 }),
  /**
   * CPU I/O wait, percent over `sampleSeconds`. The plan's 80 is out of reach on a many-core DGX
   * (README "Disks"). @default { warning: 20, critical: 50, sampleSeconds: 5 }
   */
  iowait: z
    .strictObject({
      warning: percent.default(20),
      critical: percent.default(50),
      sampleSeconds: z.number().int("a whole number").min(1, "at least 1").max(60, "at most 60").default(5),
    })
    .refine((l) => !(typeof l.warning === "number" && typeof l.critical === "number" && l.warning > l.critical), { message: "warning at most critical", path: ["warning"] })
    .default({ warning: 20, critical: 50, sampleSeconds: 5 }),
  /** Warn when random-read IOPS drop by more than this percent of the fio baseline (the plan: below 50%). @default 50 */
  iopsDropPercent: z.number().int("a whole number").min(1, "a percentage from 1 to 99").max(99, "a percentage from 1 to 99").default(50),
  /** Minutes between two alert checks. @default 5 */
  intervalMinutes: z.number().int("a whole number").min(1, "at least 1").max(60, "at most 60").default(5),
  /** A persisting alert goes to the webhook again after this many minutes (the journal gets every check). @default 60 */
  repeatMinutes: z.number().int("a whole number").min(1, "at least 1").default(60),
  /** The fio performance baseline (plan phase 1.2); absent: no baseline, no IOPS alert. */
  baseline: z
    .strictObject({
      /** Data paths measured, each on its own test file (removed afterwards). */
      paths: z.array(absolutePath).min(1, "at least one path"),
      /** Test file size: well above the drive's cache on the DGX. @default "4G" */
      size: fioSize.default("4G"),
      /** Seconds per job (four jobs run one after the other). @default 30 */
      runtimeSeconds: z.number().int("a whole number").min(1, "at least 1").max(600, "at most 600").default(30),
      /** Change this string to measure again on the next `pulumi up` (fio runs only when it, a path, the size or the time changes). @default "1" */
      trigger: z.string().min(1, "a non-empty string").default("1"),
    })
    .optional(),
});


/** borg prune's `--keep-*` numbers of one archive series. */
const retentionSection = z
  .strictObject({
    hourly: z.number().int("a whole number").min(0, "0 or more").optional(),
    daily: z.number().int("a whole number").min(0, "0 or more").optional(),
    weekly: z.number().int("a whole number").min(0, "0 or more").optional(),
    monthly: z.number().int("a whole number").min(0, "0 or more").optional(),
    yearly: z.number().int("a whole number").min(0, "0 or more").optional(),
  })
  .refine((r) => Object.values(r).some((n) => typeof n === "number" && n > 0), { message: "at least one keep number above 0" });

/** A systemd OnCalendar= expression (systemd.time(7)); install-units.sh has systemd-analyze verify it. */
const calendar = z.string().regex(/^[A-Za-z0-9*:.,/~ -]{1,64}$/, "a systemd OnCalendar expression such as '*-*-* 02:00:00' or 'hourly'");

/** A system user name borg-repo.sh accepts for the receiving side. */
const receiverUser = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, "a user name of lower-case letters, digits and '-', e.g. 'borg-sark'");

const backupSection = z.strictObject({
  /** The local borg repository (repokey encryption), created once by borg-repo.sh. */
  repository: z.strictObject({
    /** Absolute path, e.g. /mnt/borg-backup (SARK's external disk in the plan). */
    path: absolutePath,
    /** Names the pass file and exported key: /etc/dgx-storage/borg/<name>.pass and .key. */
    name: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, "a lower-case name: letters, digits, '-'"),
  }),
  paths: z
    .strictObject({
      /**
       * The daily series. The host's bind-volume devices and the writable bind sources of its
       * service containers are added automatically. @default []
       */
      daily: z.array(absolutePath).default([]),
      /** The hourly series: the critical paths only. Empty: no hourly units. @default [] */
      hourly: z.array(absolutePath).default([]),
    })
    .default({ daily: [], hourly: [] }),
  /** Live SQLite databases under those paths, archived as online-backup copies (README "Backups with borg"). @default [] */
  sqlite: z.array(absolutePath).default([]),
  retention: z
    .strictObject({
      /** @default the plan's { daily: 7, weekly: 4, monthly: 6 } */
      daily: retentionSection.default({ daily: 7, weekly: 4, monthly: 6 }),
      /** Needs keep-hourly, or each prune keeps one hourly archive a day. @default { hourly: 24 } */
      hourly: retentionSection.default({ hourly: 24 }),
    })
    .default({ daily: { daily: 7, weekly: 4, monthly: 6 }, hourly: { hourly: 24 } }),
  /** OnCalendar of each job; absent keys keep components/render/backup.ts's defaults. @default {} */
  schedules: z
    .strictObject({
      daily: calendar.optional(),
      hourly: calendar.optional(),
      offsite: calendar.optional(),
      check: calendar.optional(),
      verifyData: calendar.optional(),
      drill: calendar.optional(),
      /** The missed-schedule watch. @default "hourly" */
      watch: calendar.optional(),
    })
    .default({}),
  /** An archive adding more than this times the median of the last runs raises an alert. @default 4 */
  growthFactor: z.number().gt(1, "above 1").max(1000, "at most 1000").default(4),
  /** Files the monthly restore drill extracts and compares. @default 200 */
  drillSample: z.number().int("a whole number").min(1, "at least 1").max(100000, "at most 100000").default(200),
  /**
   * Backup jobs made by hand (crontab lines, cron.<period> scripts, timers) that run borg on the
   * repository: `report` lists them in the apply's output and the stack output
   * `existingBackupJobs`; `disable` also switches them off after this stack's units are installed
   * (a copy of each file changed is kept). @default "report"
   */
  existingJobs: z.enum(["report", "disable"]).default("report"),
  /**
   * The weekly off-site copy into a repository on the other host. This stack installs the
   * receiving side there too (one `pulumi up`, no StackReference).
   */
  offsite: z
    .strictObject({
      /** How Pulumi reaches the peer's management SSH to install the receiving side (same operator key). */
      ssh: z.strictObject({
        address,
        port: port.default(22),
        user: posixUser,
        /** The peer's host key: pins Pulumi's command there and this host's borg traffic. */
        hostKey,
      }),
      /** Where this host reaches the peer for borg traffic. @default offsite.ssh.address */
      address: address.optional(),
      /** @default offsite.ssh.port */
      port: port.optional(),
      /** The system user on the peer that owns the repository, e.g. `borg-sark`. */
      user: receiverUser,
      /** The repository directory on the peer (the key's `--restrict-to-path`). */
      repoDir: absolutePath,
    })
    .optional(),
});

// ---------------------------------------------------------------------------------------------
// The whole host config
// ---------------------------------------------------------------------------------------------

/** The shape cross-field rules read: possibly invalid, so every field is optional. */
interface RawConfig {
  host?: { name?: unknown };
  swarm?: { role?: unknown; network?: unknown };
  volumes?: { name?: unknown; host?: unknown; bind?: { device?: unknown } }[];
  services?: Record<string, { host?: unknown; ports?: { published?: unknown; protocol?: unknown; ip?: unknown }[]; mounts?: { source?: unknown; target?: unknown }[]; overlay?: unknown }>;
  migrations?: { name?: unknown; service?: unknown; source?: unknown; destination?: unknown; mount?: unknown }[];
  capacity?: { disks?: { mount?: unknown }[] };
  maintenance?: { fstrim?: { mounts?: unknown[] } };
  monitoring?: { mounts?: unknown[]; nvmeDevices?: unknown[]; baseline?: { paths?: unknown[] } };
  backup?: {
    repository?: { path?: unknown };
    paths?: { daily?: unknown[]; hourly?: unknown[] };
    sqlite?: unknown[];
    retention?: { hourly?: { hourly?: unknown } };
    offsite?: { ssh?: { address?: unknown }; repoDir?: unknown };
  };
}

/** "a, b, c", or "none" for an empty list (in messages). */
const listOrNone = (items: readonly unknown[]) => (items.length > 0 ? items.map(String).join(", ") : "none");

const inside = (a: string, b: string) => a === b || a.startsWith(b === "/" ? "/" : `${b}/`);

/** Migrations: each moves a bind mount of a service of this stack to a path of its own. */
function crossCheckMigrations(c: RawConfig, ctx: z.RefinementCtx): void {
  const seen = new Map<unknown, number>();
  const destinations = new Map<unknown, number>();
  (Array.isArray(c.migrations) ? c.migrations : []).forEach((m, i) => {
    if (seen.has(m?.name)) ctx.addIssue({ code: "custom", path: ["migrations", i, "name"], message: `a unique name (migrations[${seen.get(m?.name)}] has it)`, input: m?.name });
    else seen.set(m?.name, i);
    const src = m?.source, dst = m?.destination;
    if (typeof src === "string" && typeof dst === "string") {
      if (inside(dst, src) || inside(src, dst)) {
        ctx.addIssue({ code: "custom", path: ["migrations", i, "destination"], message: `a path neither equal to nor inside the source ${src}, nor containing it`, input: dst });
      }
      if (destinations.has(dst)) ctx.addIssue({ code: "custom", path: ["migrations", i, "destination"], message: `a destination no other migration uses (migrations[${destinations.get(dst)}])`, input: dst });
      else destinations.set(dst, i);
      if (typeof m?.mount === "string" && !inside(dst, m.mount)) {
        ctx.addIssue({ code: "custom", path: ["migrations", i, "mount"], message: `the mount point that holds the destination ${dst}`, input: m.mount });
      }
    }
    const svc = typeof m?.service === "string" ? c.services?.[m.service] : undefined;
    if (!svc) {
      ctx.addIssue({ code: "custom", path: ["migrations", i, "service"], message: `a service of this stack (${listOrNone(Object.keys(c.services ?? {}))})`, input: m?.service });
    } else if (!(Array.isArray(svc.mounts) ? svc.mounts : []).some((mt) => mt?.source === src)) {
      ctx.addIssue({ code: "custom", path: ["migrations", i, "source"], message: `a path that service ${String(m?.service)} mounts (its bind mounts: ${listOrNone((svc.mounts ?? []).map((mt) => mt?.source))})`, input: src });
    }
  });
}

/** Each entry of a list once (`key` names it in the message). */
function checkUnique(list: unknown, path: readonly (string | number)[], what: string, ctx: z.RefinementCtx): void {
  const seen = new Map<unknown, number>();
  (Array.isArray(list) ? list : []).forEach((v, i) => {
    if (seen.has(v)) ctx.addIssue({ code: "custom", path: [...path, i], message: `${what} listed once (it is already at [${seen.get(v)}])`, input: v });
    else seen.set(v, i);
  });
}

/** Monitoring, maintenance and capacity: lists without repeats; every capacity disk is watched. */
function crossCheckMonitoring(c: RawConfig, ctx: z.RefinementCtx): void {
  checkUnique(c.maintenance?.fstrim?.mounts, ["maintenance", "fstrim", "mounts"], "a mount", ctx);
  const mon = c.monitoring;
  if (mon === undefined) return;
  checkUnique(mon.mounts, ["monitoring", "mounts"], "a mount", ctx);
  checkUnique(mon.nvmeDevices, ["monitoring", "nvmeDevices"], "a device", ctx);
  checkUnique(mon.baseline?.paths, ["monitoring", "baseline", "paths"], "a path", ctx);
  const watched = Array.isArray(mon.mounts) ? mon.mounts : [];
  (Array.isArray(c.capacity?.disks) ? c.capacity.disks : []).forEach((d, i) => {
    if (typeof d?.mount === "string" && !watched.includes(d.mount)) {
      ctx.addIssue({
        code: "custom",
        path: ["capacity", "disks", i, "mount"],
        message: `a mount of monitoring.mounts (${listOrNone(watched)}): the live df reading and the usage alert cover the disks that are planned`,
        input: d.mount,
      });
    }
  });
}

/**
 * The paths the daily series gets without being told: every bind-volume device of this host and
 * every writable bind source of its containers (after migrations: the destination). Read-only
 * mounts (vLLM's model weights) are left out: the service does not write them, they can be
 * fetched again, and at hundreds of GB they would dominate the repository; list one in
 * `backup.paths.daily` to include it.
 */
export function automaticBackupPaths(c: {
  readonly volumes?: readonly { readonly bind?: { readonly device?: unknown } }[];
  readonly services?: Readonly<Record<string, { readonly mounts?: readonly { readonly source?: unknown; readonly readOnly?: unknown }[] }>>;
  readonly migrations?: readonly { readonly source?: unknown; readonly destination?: unknown }[];
}): string[] {
  const out: string[] = [];
  for (const v of Array.isArray(c.volumes) ? c.volumes : []) if (typeof v?.bind?.device === "string") out.push(v.bind.device);
  const moves = Array.isArray(c.migrations) ? c.migrations : [];
  for (const svc of Object.values(c.services ?? {})) {
    for (const m of Array.isArray(svc?.mounts) ? svc.mounts : []) {
      if (typeof m?.source !== "string" || !m.source.startsWith("/") || m.readOnly === true) continue;
      const moved = moves.find((x) => x?.source === m.source)?.destination;
      out.push(typeof moved === "string" ? moved : m.source);
    }
  }
  return out;
}

/** Sorted, without repeats and without paths inside another one of the list (borg would archive them twice). */
function outermostPaths(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && inside(p, q)));
}

/** Backup: absolute, unique paths; the repository outside what it backs up; databases inside a series. */
function crossCheckBackup(c: RawConfig, ctx: z.RefinementCtx): void {
  for (const [i, m] of (Array.isArray(c.migrations) ? c.migrations : []).entries()) {
    if ((m as { snapshot?: unknown })?.snapshot === "borg" && c.backup === undefined) {
      ctx.addIssue({ code: "custom", path: ["migrations", i, "snapshot"], message: "'none', or a backup section: snapshot 'borg' archives into this host's repository", input: "borg" });
    }
  }
  const b = c.backup;
  if (b === undefined) return;
  const strings = (l: unknown) => (Array.isArray(l) ? l.filter((x): x is string => typeof x === "string") : []);
  checkUnique(b.paths?.daily, ["backup", "paths", "daily"], "a path", ctx);
  checkUnique(b.paths?.hourly, ["backup", "paths", "hourly"], "a path", ctx);
  checkUnique(b.sqlite, ["backup", "sqlite"], "a database", ctx);
  const daily = strings(b.paths?.daily);
  const hourly = strings(b.paths?.hourly);
  const auto = automaticBackupPaths(c as Parameters<typeof automaticBackupPaths>[0]);
  if (daily.length + auto.length === 0) {
    ctx.addIssue({ code: "custom", path: ["backup", "paths", "daily"], message: "at least one path (none configured, and the host has no bind volume or bind-mounted service data)", input: b.paths?.daily });
  }
  const repo = b.repository?.path;
  if (typeof repo === "string") {
    const check = (list: readonly string[], at: readonly (string | number)[], i?: number) =>
      list.forEach((p, j) => {
        if (inside(repo, p)) {
          ctx.addIssue({ code: "custom", path: ["backup", "repository", "path"], message: `a path outside what is backed up (${p}${at.length ? ` at backup.${at.join(".")}[${i ?? j}]` : ", a bind volume or service mount of this host"} contains it: borg would archive its own repository)`, input: repo });
        } else if (inside(p, repo) && at.length) {
          ctx.addIssue({ code: "custom", path: ["backup", ...at, i ?? j], message: `a path outside the repository ${repo}`, input: p });
        }
      });
    check(daily, ["paths", "daily"]);
    check(hourly, ["paths", "hourly"]);
    check(auto, []);
  }
  const series = [...daily, ...hourly, ...auto];
  strings(b.sqlite).forEach((db, i) => {
    if (!series.some((p) => db !== p && inside(db, p))) {
      ctx.addIssue({ code: "custom", path: ["backup", "sqlite", i], message: `a database file inside a backed-up path (${listOrNone(outermostPaths(series))})`, input: db });
    }
  });
  const keepHourly = b.retention?.hourly?.hourly;
  if (hourly.length > 0 && b.retention?.hourly !== undefined && !(typeof keepHourly === "number" && keepHourly > 0)) {
    ctx.addIssue({ code: "custom", path: ["backup", "retention", "hourly", "hourly"], message: "a keep-hourly number above 0 when paths.hourly is set (without it each prune keeps one hourly archive a day)", input: keepHourly });
  }
  const o = b.offsite;
  const self = c.host as { address?: unknown; ssh?: { port?: unknown } } | undefined;
  const peerPort = (o?.ssh as { port?: unknown } | undefined)?.port ?? 22;
  if (o?.ssh?.address !== undefined && o.ssh.address === self?.address && peerPort === (self?.ssh?.port ?? 22)) {
    ctx.addIssue({ code: "custom", path: ["backup", "offsite", "ssh", "address"], message: "the other host's management SSH (this is this host's own address and port): an off-site copy on this host itself protects nothing", input: o.ssh.address });
  }
}

/** Placement, names and mounts across sections: the rules one field cannot check alone. */
function crossCheckPlacement(c: RawConfig, ctx: z.RefinementCtx): void {
  const here = c.host?.name;
  const volumes = Array.isArray(c.volumes) ? c.volumes : [];
  const names = new Map<unknown, number>();
  volumes.forEach((v, i) => {
    if (names.has(v?.name)) {
      ctx.addIssue({ code: "custom", path: ["volumes", i, "name"], message: `a unique volume name (volumes[${names.get(v?.name)}] has it already)`, input: v?.name });
    } else names.set(v?.name, i);
    if (typeof here === "string" && v?.host !== here) {
      ctx.addIssue({
        code: "custom",
        path: ["volumes", i, "host"],
        message: `this stack's host '${here}': a volume belongs in the stack file of the host that keeps it`,
        input: v?.host,
      });
    }
  });
  const devices = new Map<unknown, number>();
  volumes.forEach((v, i) => {
    const d = v?.bind?.device;
    if (d === undefined) return;
    if (devices.has(d)) ctx.addIssue({ code: "custom", path: ["volumes", i, "bind", "device"], message: `a device no other volume uses (volumes[${devices.get(d)}] binds it)`, input: d });
    else devices.set(d, i);
  });
  const published = new Map<string, string>();
  for (const [svc, s] of Object.entries(c.services ?? {})) {
    if (typeof here === "string" && s?.host !== here) {
      ctx.addIssue({
        code: "custom",
        path: ["services", svc, "host"],
        message: `this stack's host '${here}': a service belongs in the stack file of the host that runs it`,
        input: s?.host,
      });
    }
    const targets = new Map<unknown, number>();
    (Array.isArray(s?.mounts) ? s.mounts : []).forEach((m, i) => {
      if (targets.has(m?.target)) {
        ctx.addIssue({
          code: "custom",
          path: ["services", svc, "mounts", i, "target"],
          message: `one source per container path (mounts[${targets.get(m?.target)}] is already mounted there; Docker refuses a duplicate mount point)`,
          input: m?.target,
        });
      } else targets.set(m?.target, i);
      const src = m?.source;
      if (typeof src === "string" && !src.startsWith("/") && !names.has(src)) {
        ctx.addIssue({
          code: "custom",
          path: ["services", svc, "mounts", i, "source"],
          message: `a volume declared in this stack's volumes (${listOrNone([...names.keys()])}) or an absolute host path`,
          input: src,
        });
      }
    });
    (Array.isArray(s?.ports) ? s.ports : []).forEach((p, i) => {
      const key = `${p?.ip ?? "0.0.0.0"}:${String(p?.published)}/${String(p?.protocol ?? "tcp")}`;
      const other = published.get(key);
      if (other !== undefined) {
        ctx.addIssue({ code: "custom", path: ["services", svc, "ports", i, "published"], message: `a host port no other service publishes (${other} has ${key})`, input: p?.published });
      } else published.set(key, svc);
    });
    if (s?.overlay !== false && c.swarm === undefined) {
      ctx.addIssue({ code: "custom", path: ["services", svc, "overlay"], message: "false, or a swarm section: the overlay network needs a swarm", input: s?.overlay ?? true });
    }
  }
  if (c.swarm?.role === "worker" && c.swarm.network !== undefined) {
    ctx.addIssue({ code: "custom", path: ["swarm", "network"], message: "no network on a worker: the manager creates the overlay network", input: c.swarm.network });
  }
}

const hostConfigSchema = z
  .strictObject({
    host: hostSection,
    docker: dockerSection.default(dockerSection.parse({})),
    sysctl: sysctlSection.default({ "vm.swappiness": 10, "vm.vfs_cache_pressure": 50 }),
    swarm: swarmSection.optional(),
    volumes: z.array(volumeSection).default([]),
    services: z.record(dockerName, serviceSection).default({}),
    migrations: z.array(migrationSection).default([]),
    capacity: capacitySection.optional(),
    maintenance: maintenanceSection.optional(),
    monitoring: monitoringSection.optional(),
    backup: backupSection.optional(),
  })
  .superRefine((c, ctx) => {
    crossCheckPlacement(c as unknown as RawConfig, ctx);
    crossCheckMigrations(c as unknown as RawConfig, ctx);
    crossCheckMonitoring(c as unknown as RawConfig, ctx);
    crossCheckBackup(c as unknown as RawConfig, ctx);
    if (c.swarm && c.docker?.daemon?.liveRestore === true) {
      ctx.addIssue({
        code: "custom",
        path: ["docker", "daemon", "liveRestore"],
        message: `false on a swarm node (swarm.role is '${c.swarm.role}'): dockerd refuses live-restore together with swarm mode`,
        input: true,
      });
    }
    if (c.swarm?.role === "worker" && !c.swarm.managerStack) {
      ctx.addIssue({
        code: "custom",
        path: ["swarm", "managerStack"],
        message: "the manager's stack (e.g. 'organization/dgx-storage/sark') on a worker",
        input: undefined,
      });
    }
    if (c.swarm?.role === "manager" && c.swarm.managerStack) {
      ctx.addIssue({
        code: "custom",
        path: ["swarm", "managerStack"],
        message: "no managerStack on the manager itself",
        input: c.swarm.managerStack,
      });
    }
  }, EVEN_IF_INVALID);

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The validated, frozen config of one host. */
type Parsed = z.output<typeof hostConfigSchema>;
export type HostConfig = DeepReadonly<
  Omit<Parsed, "host" | "services" | "backup"> & {
    host: Parsed["host"] & { sudo: boolean };
    services: Record<string, Parsed["services"][string] & { containerName: string }>;
    /** `paths.daily`: the configured paths plus the automatic ones, outermost only, sorted. */
    backup?: NonNullable<Parsed["backup"]>;
  }
>;
export type DaemonSettings = HostConfig["docker"]["daemon"];
export type VolumeConfig = HostConfig["volumes"][number];
export type ServiceConfig = HostConfig["services"][string];
export type SwarmConfig = NonNullable<HostConfig["swarm"]>;
export type MigrationConfig = HostConfig["migrations"][number];
export type CapacityConfig = NonNullable<HostConfig["capacity"]>;
export type MaintenanceConfig = NonNullable<HostConfig["maintenance"]>;
export type MonitoringConfig = NonNullable<HostConfig["monitoring"]>;
export type BackupConfig = NonNullable<HostConfig["backup"]>;

/** Thrown by the door: one error listing every problem. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/** Where the config came from and what is being done with it. */
export interface ParseOptions {
  /** The stack file's name, quoted in every error (e.g. `Pulumi.sark.yaml`). */
  readonly source: string;
  /**
   * `apply` refuses what `preview` only warns about (an unpinned host key).
   * @default "preview"
   */
  readonly mode?: "preview" | "apply";
  /**
   * Secret keys that are set (their values are never passed in). When given, a missing secret
   * is a problem; synth and the schema tests leave it out, because the operator sets secrets.
   * @default undefined (not checked)
   */
  readonly secretsPresent?: readonly string[];
  /**
   * Secret keys whose values the caller found malformed (`checkSecretFormat`): each is listed as
   * a problem, its value never shown. @default []
   */
  readonly invalidSecrets?: readonly SecretKey[];
}

function show(value: unknown): string {
  if (value === undefined) return "(missing)";
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function getAt(obj: unknown, keyPath: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of keyPath) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function describe(issue: z.core.$ZodIssue, values: unknown): string[] {
  const keyPath = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => {
      const full = keyPath ? `${keyPath}.${k}` : k;
      return `${full}: unknown key (value ${show(getAt(values, [...issue.path, k]))}); check the spelling`;
    });
  }
  if (issue.code === "invalid_key") {
    const key = String(issue.path[issue.path.length - 1]);
    return [`${keyPath}: the key ${JSON.stringify(key)} is invalid; expected ${issue.issues.map((i) => i.message).join("; ")}`];
  }
  const value = "input" in issue ? issue.input : getAt(values, issue.path);
  let expected: string;
  if (issue.code === "invalid_value") expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  else if (issue.code === "invalid_type" && issue.message.startsWith("Invalid input")) expected = `a ${issue.expected}`;
  else expected = issue.message;
  return [`${keyPath === "" ? "(root)" : keyPath}: ${show(value)} is invalid; expected ${expected}`];
}

/**
 * Validates the config values of one stack (keys without the `dgx-storage:` prefix) and returns
 * the frozen config. Throws one `ConfigError` listing every problem.
 */
export function parseHostConfig(values: Readonly<Record<string, unknown>>, opts: ParseOptions): HostConfig {
  const plain: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if ((SECRET_KEYS as readonly string[]).includes(k)) {
      problems.push(`${k}: must be set as a secret (pulumi config set --secret ${k} ...), not inline`);
      continue;
    }
    plain[k] = v;
  }
  for (const k of opts.secretsPresent ? SECRET_KEYS : []) {
    if (OPTIONAL_SECRET_KEYS.includes(k)) continue;
    if (!opts.secretsPresent?.includes(k) && !(k in values)) {
      problems.push(`${k}: (missing) secret; set it with: pulumi config set --secret ${k} < ~/.ssh/<key> (Pulumi stores it encrypted)`);
    }
  }
  if (opts.secretsPresent && values.backup !== undefined && !opts.secretsPresent.includes("borgPassphrase")) {
    problems.push("borgPassphrase: (missing) secret, required with a backup section; set it with: pulumi config set --secret borgPassphrase (keep a copy off the hosts)");
  }
  for (const k of opts.invalidSecrets ?? []) {
    problems.push(`${k}: (secret, not shown) is invalid; expected ${SECRET_FORMATS[k]?.expected ?? "another value"}`);
  }
  const result = hostConfigSchema.safeParse(plain);
  if (!result.success) problems.push(...result.error.issues.flatMap((i) => describe(i, plain)));
  const peerKey = result.success ? result.data.backup?.offsite?.ssh.hostKey : undefined;
  if (opts.mode === "apply" && peerKey === UNPINNED_HOST_KEY) {
    problems.push(
      `backup.offsite.ssh.hostKey: ${show(UNPINNED_HOST_KEY)} cannot be applied; pin the other host's key (the same line as its stack's host.ssh.hostKey): ` +
        `pulumi config set --path backup.offsite.ssh.hostKey 'ssh-ed25519 AAAA...'`,
    );
  }
  if (result.success && opts.mode === "apply" && result.data.host.ssh.hostKey === UNPINNED_HOST_KEY) {
    const h = result.data.host;
    problems.push(
      `host.ssh.hostKey: ${show(UNPINNED_HOST_KEY)} cannot be applied; pin the key first: ` +
        `ssh-keyscan -t ed25519 -p ${h.ssh.port} ${h.address}, check its fingerprint on the console, then ` +
        `pulumi config set --path host.ssh.hostKey 'ssh-ed25519 AAAA...'`,
    );
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(opts.source, problems);
  const data = result.data;
  const config = {
    ...data,
    host: { ...data.host, sudo: data.host.sudo ?? data.host.ssh.user !== "root" },
    swarm:
      data.swarm?.role === "manager"
        ? { ...data.swarm, network: data.swarm.network ?? { name: "optimized-swarm", encrypted: false } }
        : data.swarm,
    // A migrated mount reads from its destination: the container is replaced after the
    // migration has copied and verified the data there.
    services: Object.fromEntries(
      Object.entries(data.services).map(([key, svc]) => {
        const moves = data.migrations.filter((m) => m.service === key);
        const mounts = svc.mounts.map((mt) => ({ ...mt, source: moves.find((m) => m.source === mt.source)?.destination ?? mt.source }));
        return [key, { ...svc, containerName: svc.containerName ?? key, mounts }];
      }),
    ),
    ...(data.backup
      ? { backup: { ...data.backup, paths: { ...data.backup.paths, daily: outermostPaths([...data.backup.paths.daily, ...automaticBackupPaths(data)]) } } }
      : {}),
  };
  return deepFreeze(config) as HostConfig;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

/**
 * The values of a stack file's `config:` block in the project's namespace, prefix removed.
 * Secure values (`{ secure: ... }`) are returned as the marker `{ secure: true }` so the door
 * can tell a set secret from a missing one without ever seeing its value.
 */
export function readStackFile(file: string): Record<string, unknown> {
  const doc = parseYaml(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc?.config ?? {})) {
    const [ns, name] = key.includes(":") ? key.split(/:(.*)/s) : [PROJECT, key];
    if (ns !== PROJECT || name === undefined) continue; // provider config such as docker:host
    out[name] = value;
  }
  return out;
}

/** Splits stack-file values into plain values and the names of secrets that are set. */
export function splitSecrets(values: Readonly<Record<string, unknown>>): {
  plain: Record<string, unknown>;
  secretsPresent: string[];
} {
  const plain: Record<string, unknown> = {};
  const secretsPresent: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (v && typeof v === "object" && "secure" in v) secretsPresent.push(k);
    else plain[k] = v;
  }
  return { plain, secretsPresent };
}

/** One config value as Pulumi hands it over: the raw string, and whether it was set with `--secret`. */
export interface RawConfigValue {
  readonly value: string;
  readonly secret?: boolean;
}

/**
 * The door for config as Pulumi hands it over: the runtime's map for `pulumi up` and preview
 * (components/stack-config.ts), the Automation API's `getAllConfig()` for `npm run drift`. Keys
 * are full (`dgx-storage:<key>`; other namespaces are skipped), values raw strings, decoded as
 * JSON where they parse. A key of `SECRET_KEYS` set as a secret leaves the values: it counts as
 * present, its form is checked (`checkSecretFormat`, value never shown) and it is returned in
 * `secrets` for a caller that needs it; set in plaintext, it stays in the values and the door
 * rejects it.
 */
export function parseStackConfig(
  all: Readonly<Record<string, RawConfigValue>>,
  opts: Omit<ParseOptions, "secretsPresent" | "invalidSecrets">,
): { config: HostConfig; secrets: Partial<Record<SecretKey, string>> } {
  const values: Record<string, unknown> = {};
  const secrets: Partial<Record<SecretKey, string>> = {};
  for (const [fullKey, { value, secret }] of Object.entries(all)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    if (secret === true && (SECRET_KEYS as readonly string[]).includes(key)) {
      secrets[key as SecretKey] = value;
      continue;
    }
    try {
      values[key] = JSON.parse(value);
    } catch {
      values[key] = value;
    }
  }
  const config = parseHostConfig(values, { ...opts, secretsPresent: Object.keys(secrets), invalidSecrets: checkSecretFormat(secrets) });
  return { config, secrets };
}

/**
 * Loads and validates a stack file (tests and synth). Secrets are only required to be set when
 * `requireSecrets` is true: the committed stack files carry none, the operator adds them.
 */
export function loadStackFile(
  file: string,
  opts: { readonly mode?: "preview" | "apply"; readonly requireSecrets?: boolean } = {},
): HostConfig {
  const { plain, secretsPresent } = splitSecrets(readStackFile(file));
  return parseHostConfig(plain, {
    source: path.basename(file),
    mode: opts.mode ?? "preview",
    ...(opts.requireSecrets ? { secretsPresent } : {}),
  });
}
