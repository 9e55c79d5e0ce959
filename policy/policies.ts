/**
 * The rules of the dgx-storage policy pack, as plain `ResourceValidationPolicy` objects.
 *
 * Each is `mandatory`: a violation fails `pulumi preview` and `pulumi up`. They restate, at the
 * engine's door, contracts the components already keep (README "Remote commands", "Volumes",
 * "Services"), so that a later change that breaks one is stopped in review even if a unit test
 * was changed with it.
 *
 * What a policy sees (from @pulumi/policy 1.21's server.js and deserialize.js):
 * - `props` are the resource's inputs with secrets unwrapped: `deserializeProperties(props,
 *   false)` replaces every secret by its plaintext value, so `connection.hostKey` is readable
 *   although the whole `connection` is a secret input.
 * - `props` is wrapped in `unknownCheckingProxy`: reading a value that is unknown during preview
 *   throws, and the server then reports the policy as *advisory* ("can't run policy during
 *   preview") for that resource. The rules below therefore read only values the program knows at
 *   preview (config-derived strings, mount targets), never a Docker volume's or image's output.
 * - `opts` carries `protect` but not `retainOnDelete`: the analyzer protocol has no such field
 *   (AnalyzerResourceOptions in @pulumi/pulumi's proto), so the volume rule checks `protect`.
 *
 * No import of @pulumi/pulumi or of the components: the rules judge what reaches the engine,
 * whatever code produced it.
 */
import * as path from "node:path";
import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";

export const COMMAND_TYPE = "command:remote:Command";
export const VOLUME_TYPE = "docker:index/volume:Volume";
export const CONTAINER_TYPE = "docker:index/container:Container";

/** The config door's placeholder for a host key nobody has recorded yet. */
export const UNPINNED_HOST_KEY = "unpinned";

/**
 * A volume label that exempts a Docker volume from the protection rule: for a scratch volume
 * (`volumes[].data: false`) the component would add `{ label: "dgx-storage/holds-data", value:
 * "false" }`. Anything else, including no label, counts as holding data.
 */
export const HOLDS_DATA_LABEL = "dgx-storage/holds-data";

/** An OpenSSH public key line (`<type> <base64> [comment]`), as `ssh-keyscan` prints it. */
const HOST_KEY_LINE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}( [^\n]*)?$/;

type Props = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Own property test that does not read the value (reading an unknown value would throw). */
function has(o: Props, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function hostKeyProblem(where: string, hostKey: unknown): string | undefined {
  if (typeof hostKey !== "string" || hostKey.trim() === "") {
    return `${where}.hostKey is not set: the command would trust any machine that answers on the address. Pin it with the key \`ssh-keyscan\` prints (README "Set-up").`;
  }
  if (hostKey.trim() === UNPINNED_HOST_KEY) {
    return `${where}.hostKey is "${UNPINNED_HOST_KEY}": record the host's real key (\`ssh-keyscan -t ed25519 <address>\`, checked on the console) with \`pulumi config set --path host.ssh.hostKey\`.`;
  }
  if (!HOST_KEY_LINE.test(hostKey.trim())) {
    return `${where}.hostKey is not an OpenSSH public key line (\`<type> <base64>\`): ${JSON.stringify(hostKey.slice(0, 40))}`;
  }
  return undefined;
}

/** Every remote command pins the host key of the host it connects to (and of a jump host). */
export const remoteCommandPinsHostKey: ResourceValidationPolicy = {
  name: "remote-command-pins-host-key",
  description: "Every command:remote:Command sets connection.hostKey to a real OpenSSH host key (not 'unpinned'), and so does its proxy connection.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== COMMAND_TYPE) return;
    const connection = (args.props as Props).connection;
    if (!isObject(connection)) {
      reportViolation("connection is missing: a remote command needs an SSH connection with a pinned host key.");
      return;
    }
    const problem = hostKeyProblem("connection", connection.hostKey);
    if (problem) reportViolation(problem);
    const proxy = connection.proxy;
    if (proxy !== undefined) {
      const proxyProblem = isObject(proxy) ? hostKeyProblem("connection.proxy", proxy.hostKey) : "connection.proxy is not an object";
      if (proxyProblem) reportViolation(proxyProblem);
    }
  },
};

/** A command that receives something on stdin (only secrets travel there) logs nothing. */
export const secretStdinNoLogging: ResourceValidationPolicy = {
  name: "secret-stdin-no-logging",
  description: 'A command:remote:Command with stdin (secrets travel only there) sets logging: "none", so no tool can echo the secret into the Pulumi log.',
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== COMMAND_TYPE) return;
    const props = args.props as Props;
    // presence only: the value may be a secret that is unknown at preview (a join token)
    if (!has(props, "stdin")) return;
    const logging = props.logging;
    if (logging !== "none") {
      reportViolation(
        `stdin is set but logging is ${logging === undefined ? "not set (the provider's default logs stdout and stderr)" : JSON.stringify(logging)}: a command that receives a secret must set logging: "none".`,
      );
    }
  },
};

/** `driverOpts.o` names a bind mount: `bind`, `rbind`, or a list that contains one of them. */
function isBindOption(o: unknown): boolean {
  return typeof o === "string" && o.split(",").some((x) => x.trim() === "bind" || x.trim() === "rbind");
}

/** A bind-backed local volume names an absolute, normalised device directory. */
export const bindVolumeAbsoluteDevice: ResourceValidationPolicy = {
  name: "bind-volume-absolute-device",
  description:
    "A docker Volume with driverOpts.o = bind has an absolute, normalised driverOpts.device (Docker accepts a relative one and only fails when a container mounts it).",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== VOLUME_TYPE) return;
    const driverOpts = (args.props as Props).driverOpts;
    if (!isObject(driverOpts) || !isBindOption(driverOpts.o)) return;
    const device = driverOpts.device;
    if (typeof device !== "string" || device === "") {
      reportViolation("driverOpts.o is bind but driverOpts.device is not set.");
    } else if (!path.posix.isAbsolute(device)) {
      reportViolation(`driverOpts.device ${JSON.stringify(device)} is not an absolute path.`);
    } else if (device !== "/" && (device.endsWith("/") || path.posix.normalize(device) !== device)) {
      reportViolation(`driverOpts.device ${JSON.stringify(device)} is not a normalised path (no '..', '.', '//' or trailing '/').`);
    }
  },
};

function exemptFromProtection(props: Props): boolean {
  const labels = props.labels;
  if (!Array.isArray(labels)) return false;
  return labels.some((l: unknown) => isObject(l) && l.label === HOLDS_DATA_LABEL && l.value === "false");
}

/** Every Docker volume is protected, unless it is labelled as holding no data. */
export const dataVolumeProtected: ResourceValidationPolicy = {
  name: "data-volume-protected",
  description: `Every docker Volume is registered with protect: true (pulumi destroy and replacements refuse), unless it carries the label ${HOLDS_DATA_LABEL}=false.`,
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== VOLUME_TYPE) return;
    if (args.opts.protect === true) return;
    if (exemptFromProtection(args.props as Props)) return;
    reportViolation(
      `volume ${args.name} is not protected: a volume that holds data needs protect: true (and retainOnDelete, which policies cannot see). Label it ${HOLDS_DATA_LABEL}=false if it holds none.`,
    );
  },
};

/** A container path as Docker compares it: trailing slashes do not make another path. */
function normaliseTarget(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, "") : n;
}

/** No container mounts two sources at one path (`mounts[].target`, `volumes[].containerPath`). */
export const containerOneSourcePerTarget: ResourceValidationPolicy = {
  name: "container-one-source-per-target",
  description:
    "A docker Container mounts at most one source at each container path, counting mounts[].target and volumes[].containerPath together (Docker refuses a duplicate mount point).",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== CONTAINER_TYPE) return;
    const props = args.props as Props;
    const seen = new Map<string, string[]>();
    const add = (target: unknown, what: string) => {
      if (typeof target !== "string") return;
      const key = normaliseTarget(target);
      seen.set(key, [...(seen.get(key) ?? []), what]);
    };
    // only the targets are read: a mount's source may be a volume name unknown at preview
    const mounts = props.mounts;
    if (Array.isArray(mounts)) {
      mounts.forEach((m: unknown, i) => {
        if (isObject(m)) add(m.target, `mounts[${i}]`);
      });
    }
    const volumes = props.volumes;
    if (Array.isArray(volumes)) {
      volumes.forEach((v: unknown, i) => {
        if (isObject(v)) add(v.containerPath, `volumes[${i}]`);
      });
    }
    for (const [target, sources] of seen) {
      if (sources.length > 1) reportViolation(`${target} is mounted ${sources.length} times (${sources.join(", ")}): one source per container path.`);
    }
  },
};

/** A container label that allows a published port on every interface (the config's `exposeToAll`). */
export const EXPOSE_TO_ALL_LABEL = "dgx-storage/expose-to-all";

/**
 * Every published port names a host address: Docker's default is every interface, which a new
 * interface (a VPN, a second NIC) would expose without anyone deciding it.
 */
export const containerPortBound: ResourceValidationPolicy = {
  name: "container-port-bound",
  description: `A docker Container publishes each port on a named host address (ports[].ip, not 0.0.0.0), unless it carries the label ${EXPOSE_TO_ALL_LABEL}=true.`,
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
    if (args.type !== CONTAINER_TYPE) return;
    const props = args.props as Props;
    const labels = Array.isArray(props.labels) ? props.labels : [];
    // only the one label's value is read: the configuration label's may be unknown at preview
    if (labels.some((l: unknown) => isObject(l) && l.label === EXPOSE_TO_ALL_LABEL && l.value === "true")) return;
    const ports = Array.isArray(props.ports) ? props.ports : [];
    ports.forEach((p: unknown, i) => {
      if (!isObject(p)) return;
      if (p.ip === undefined || p.ip === "" || p.ip === "0.0.0.0") {
        reportViolation(
          `ports[${i}] (external ${String(p.external)}) is published on every interface: bind it to an address of the host (ports[].ip), or label the container ${EXPOSE_TO_ALL_LABEL}=true.`,
        );
      }
    });
  },
};

/** The pack's rules, in the order they are reported. */
export const policies: readonly ResourceValidationPolicy[] = [
  remoteCommandPinsHostKey,
  secretStdinNoLogging,
  bindVolumeAbsoluteDevice,
  dataVolumeProtected,
  containerOneSourcePerTarget,
  containerPortBound,
];
