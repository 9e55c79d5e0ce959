/**
 * What the real providers do with a resource, for the e2e engine (engine.ts): the diff rules
 * (pure, unit-tested in test/e2e-engine.test.ts) and the create/update/delete effects on a test
 * host, each citing the provider source it follows.
 *
 * Sources:
 * - @pulumi/command 1.2.1 = pulumi/pulumi-command tag v1.2.1: provider/pkg/provider/remote/
 *   commandController.go, commandOutputs.go, command.go; provider/pkg/provider/common/inputs.go.
 * - @pulumi/docker 5.2.0 bridges kreuzwerker/terraform-provider-docker v4.5.0 (pulumi-docker's
 *   `upstream` submodule, commit 5074970c): internal/provider/resource_docker_container.go
 *   (schema), resource_docker_container_funcs.go (create/read/update/delete),
 *   resource_docker_container_structures.go, resource_docker_volume.go,
 *   resource_docker_network.go, resource_docker_network_funcs.go. Its Docker client is
 *   github.com/docker/docker v28.5.2 (the tag's go.mod, line 16).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const COMMAND = "command:remote:Command";
export const CONTAINER = "docker:index/container:Container";
export const VOLUME = "docker:index/volume:Volume";
export const NETWORK = "docker:index/network:Network";
export const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
export const DOCKER_PROVIDER = "pulumi:providers:docker";
export const STACK_REFERENCE = "pulumi:pulumi:StackReference";

type Inputs = Record<string, unknown>;

/** What a diff found: nothing, an in-place update, or a replacement, and the keys that differ. */
export interface Diff {
  readonly kind: "same" | "update" | "replace";
  /** Input keys that changed. */
  readonly changed: readonly string[];
  /** Of those, the ones that force a replacement. */
  readonly replaceKeys: readonly string[];
}

/** A JSON form that does not depend on key order: equal values, equal strings. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .filter((k) => (v as Inputs)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Inputs)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/** A set-typed attribute (schema.TypeSet): order does not matter. */
function asSet(v: unknown): string {
  return canonical([...((v as unknown[] | undefined) ?? [])].map(canonical).sort());
}

function diffOf(changed: string[], forceNew: (k: string) => boolean): Diff {
  const replaceKeys = changed.filter(forceNew);
  return { kind: changed.length === 0 ? "same" : replaceKeys.length > 0 ? "replace" : "update", changed, replaceKeys };
}

// ---------------------------------------------------------------------------------------------
// command:remote:Command

/**
 * The inputs of remote.Command (CommandInputs, command.go lines 37-49, and ResourceInputs,
 * common/inputs.go lines 6-15). `environment` is refused: the provider sets it with
 * session.Setenv (commandOutputs.go lines 42-49), which sshd drops unless it `AcceptEnv`s the
 * name, and this engine's ssh cannot do the same.
 */
const COMMAND_INPUTS = new Set(["connection", "create", "update", "delete", "triggers", "stdin", "logging", "addPreviousOutputInEnv"]);

/**
 * Diff of a remote.Command. `triggers` carries `provider:"replaceOnChanges"` (common/inputs.go
 * line 10): a change replaces. Any other changed input is an update (pulumi-go-provider's infer
 * diffs the inputs; Update, commandController.go lines 63-83, runs `update`, or `create` when
 * there is no `update`). No change: nothing runs.
 */
export function diffCommand(olds: Inputs, news: Inputs): Diff {
  const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].sort();
  const changed = keys.filter((k) => canonical(olds[k]) !== canonical(news[k]));
  return diffOf(changed, (k) => k === "triggers");
}

export function checkCommandInputs(inputs: Inputs): void {
  refuseUnknown("command:remote:Command", inputs, COMMAND_INPUTS);
}

// ---------------------------------------------------------------------------------------------
// docker:index/container:Container

/**
 * The container inputs this engine translates into Docker API calls (Pulumi's camelCase names
 * of the provider's schema). Anything else fails the step: a field the rehearsal ignored
 * silently would pass here and surprise on the servers.
 */
const CONTAINER_INPUTS = new Set([
  "name",
  "image",
  "command",
  "envs",
  "labels",
  "restart",
  "ports",
  "mounts",
  "deviceRequests",
  "shmSize",
  "networksAdvanced",
  "healthcheck",
  "wait",
  "waitTimeout",
  "start",
  "mustRun",
  "destroyGraceSeconds",
  "logOpts",
  "logDriver",
]);

/**
 * Attributes without ForceNew in resource_docker_container.go (v4.5.0), among the inputs above:
 * restart (line 230), start (72), wait (79), wait_timeout (86), must_run (122),
 * destroy_grace_seconds (827) and healthcheck (1045: neither the block nor its fields are ForceNew). Every other translated input is ForceNew
 * (name 50, image 141, command 163, env 590, labels 833, ports 487, mounts 328, device_requests
 * 774, shm_size 863, networks_advanced 909, log_driver 886, log_opts 894).
 */
const CONTAINER_UPDATABLE = new Set(["restart", "start", "wait", "waitTimeout", "mustRun", "destroyGraceSeconds", "healthcheck", "maxRetryCount"]);
/** Of the updatable ones, those resourceDockerContainerUpdate sends to ContainerUpdate (funcs.go lines 1015-1018). */
const CONTAINER_UPDATE_API = new Set(["restart", "maxRetryCount"]);
/** Set-typed (schema.TypeSet) attributes: compared without order. */
const CONTAINER_SETS = new Set(["envs", "labels", "mounts", "deviceRequests", "networksAdvanced"]);
/**
 * Optional+Computed attributes: left out of the program, the state's value stands and nothing
 * differs (labels 833, shm_size 863, log_driver 886, healthcheck 1045).
 */
const CONTAINER_COMPUTED = new Set(["labels", "shmSize", "logDriver", "healthcheck"]);

export function checkContainerInputs(inputs: Inputs): void {
  refuseUnknown("docker.Container", inputs, CONTAINER_INPUTS);
}

/** Container diff: a change in the updatable attributes only is an update; any other replaces. */
export function diffContainer(olds: Inputs, news: Inputs): Diff {
  const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].sort();
  const changed = keys.filter((k) => {
    if (news[k] === undefined && CONTAINER_COMPUTED.has(k)) return false;
    return CONTAINER_SETS.has(k) ? asSet(olds[k]) !== asSet(news[k]) : canonical(olds[k]) !== canonical(news[k]);
  });
  return diffOf(changed, (k) => !CONTAINER_UPDATABLE.has(k));
}

/** Whether an update calls ContainerUpdate (else it only changes the state). */
export function containerUpdateCallsApi(diff: Diff): boolean {
  return diff.changed.some((k) => CONTAINER_UPDATE_API.has(k));
}

/** Go's time.ParseDuration for the forms a health check uses ("30s", "1m30s", "500ms"), in ns. */
export function goDurationNs(s: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * units[m[2]!]!;
    at = re.lastIndex;
  }
  if (at !== s.length || s === "") throw new Error(`not a Go duration: '${s}'`);
  return Math.round(total);
}

/** The ContainerCreate request of resourceDockerContainerCreate (funcs.go lines 43-456) for these inputs. */
export interface ContainerCreate {
  readonly name: string;
  readonly body: Record<string, unknown>;
  /** networks_advanced: connected after the create, bridge disconnected first (funcs.go lines 462-503). */
  readonly networks: readonly { readonly name: string; readonly aliases: readonly string[] }[];
  /** Start after the create (schema default true, line 72; funcs.go line 584: no start, no wait). */
  readonly start: boolean;
  readonly wait: boolean;
  /** Seconds (schema default 60, resource_docker_container.go line 86). */
  readonly waitTimeout: number;
}

export function containerCreateRequest(inputs: Inputs): ContainerCreate {
  checkContainerInputs(inputs);
  const i = inputs as {
    name: string;
    image: string;
    command?: string[];
    envs?: string[];
    labels?: { label: string; value: string }[];
    restart?: string;
    ports?: { internal: number; external?: number; protocol?: string; ip?: string }[];
    mounts?: { type: string; source?: string; target: string; readOnly?: boolean }[];
    deviceRequests?: { driver?: string; count?: number; deviceIds?: string[]; capabilities?: string[] }[];
    shmSize?: number;
    networksAdvanced?: { name: string; aliases?: string[] }[];
    healthcheck?: { tests?: string[]; interval?: string; timeout?: string; startPeriod?: string; retries?: number };
    start?: boolean;
    wait?: boolean;
    waitTimeout?: number;
    logDriver?: string;
    logOpts?: Record<string, string>;
  };
  if (i.command?.some((c) => c === "")) throw new Error("values for command may not be empty"); // funcs.go line 86
  // portSetToDockerPorts (structures.go lines 228-258); ip defaults to 0.0.0.0, protocol to tcp
  // (resource_docker_container.go, ports block)
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of i.ports ?? []) {
    const key = `${p.internal}/${p.protocol ?? "tcp"}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.ip ?? "0.0.0.0", HostPort: p.external === undefined ? "" : String(p.external) });
  }
  const hc = i.healthcheck;
  const body: Record<string, unknown> = {
    Image: i.image,
    ...(i.command ? { Cmd: i.command } : {}),
    ...(i.envs?.length ? { Env: i.envs } : {}),
    ...(i.labels?.length ? { Labels: Object.fromEntries(i.labels.map((l) => [l.label, l.value])) } : {}),
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    // funcs.go lines 139-162
    ...(hc
      ? {
          Healthcheck: {
            Test: hc.tests ?? [],
            Interval: goDurationNs(hc.interval ?? "0s"),
            Timeout: goDurationNs(hc.timeout ?? "0s"),
            StartPeriod: goDurationNs(hc.startPeriod ?? "0s"),
            Retries: hc.retries ?? 0,
          },
        }
      : {}),
    HostConfig: {
      // funcs.go lines 250-264; restart defaults to "no" (schema line 233)
      RestartPolicy: { Name: i.restart ?? "no", MaximumRetryCount: 0 },
      Mounts: (i.mounts ?? []).map((m) => ({ Type: m.type, Source: m.source ?? "", Target: m.target, ReadOnly: m.readOnly ?? false })),
      AutoRemove: false,
      ReadonlyRootfs: false,
      Privileged: false,
      PublishAllPorts: false,
      LogConfig: { Type: i.logDriver ?? "", ...(i.logOpts ? { Config: i.logOpts } : {}) },
      ...(Object.keys(bindings).length ? { PortBindings: bindings } : {}),
      // deviceRequestsSetToDockerRequests (structures.go lines 332-363): driver defaults to "cdi"
      // (schema), capabilities become one AND-list
      ...(i.deviceRequests?.length
        ? {
            DeviceRequests: i.deviceRequests.map((d) => ({
              Driver: d.driver ?? "cdi",
              Count: d.count ?? 0,
              DeviceIDs: d.deviceIds ?? null,
              Capabilities: d.capabilities ? [d.capabilities] : null,
            })),
          }
        : {}),
      // shm_size is in MiB: "Size of /dev/shm in MBs", * 1024 * 1024 (funcs.go lines 350-352)
      ...(i.shmSize !== undefined ? { ShmSize: i.shmSize * 1024 * 1024 } : {}),
      // hostConfig.Init = &init, false unless set (funcs.go lines 447-448)
      Init: false,
    },
    NetworkingConfig: {},
  };
  return {
    name: i.name,
    body,
    networks: (i.networksAdvanced ?? []).map((n) => ({ name: n.name, aliases: n.aliases ?? [] })),
    start: i.start ?? true,
    wait: i.wait ?? false,
    waitTimeout: i.waitTimeout ?? 60,
  };
}

// ---------------------------------------------------------------------------------------------
// docker:index/volume:Volume and docker:index/network:Network

const VOLUME_INPUTS = new Set(["name", "driver", "driverOpts", "labels"]);
const NETWORK_INPUTS = new Set(["name", "driver", "attachable", "options", "labels", "internal"]);

export function checkVolumeInputs(inputs: Inputs): void {
  refuseUnknown("docker.Volume", inputs, VOLUME_INPUTS);
}
export function checkNetworkInputs(inputs: Inputs): void {
  refuseUnknown("docker.Network", inputs, NETWORK_INPUTS);
}

/** The state resourceDockerVolumeRead sets (resource_docker_volume.go lines 308-312), from VolumeInspect. */
export function volumeState(inspect: {
  Name: string;
  Driver: string;
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
  Mountpoint: string;
}): Inputs {
  return {
    name: inspect.Name,
    driver: inspect.Driver,
    driverOpts: inspect.Options ?? {},
    labels: labelSet(inspect.Labels),
    mountpoint: inspect.Mountpoint,
  };
}

/**
 * Volume diff: the declared inputs against the state Read set. Every attribute is ForceNew
 * (resource_docker_volume.go lines 41-67); `name` and `driver` are Optional+Computed (left out,
 * the state's stands); driver_opts is not Computed, so leaving it out of a volume that has
 * options is a change.
 */
export function diffVolume(state: Inputs, news: Inputs): Diff {
  const changed: string[] = [];
  if (news.name !== undefined && news.name !== state.name) changed.push("name");
  if (news.driver !== undefined && news.driver !== state.driver) changed.push("driver");
  if (canonical(news.driverOpts ?? {}) !== canonical(state.driverOpts ?? {})) changed.push("driverOpts");
  if (asSet(news.labels) !== asSet(state.labels)) changed.push("labels");
  return diffOf(changed, () => true);
}

/** The state resourceDockerNetworkReadRefreshFunc sets (resource_docker_network_funcs.go lines 175-196). */
export function networkState(inspect: {
  Id: string;
  Name: string;
  Driver: string;
  Attachable: boolean;
  Internal: boolean;
  Scope: string;
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
}): Inputs {
  return {
    name: inspect.Name,
    driver: inspect.Driver,
    attachable: inspect.Attachable,
    internal: inspect.Internal,
    scope: inspect.Scope,
    options: inspect.Options ?? {},
    labels: labelSet(inspect.Labels),
  };
}

/**
 * Network diff: declared inputs against the read state; every attribute is ForceNew
 * (resource_docker_network.go lines 25-135). `driver`, `options` and `internal` are
 * Optional+Computed: compared only when declared, and then the whole map (an overlay network
 * reads back `com.docker.network.driver.overlay.vxlanid_list` besides a declared `encrypted`).
 */
export function diffNetwork(state: Inputs, news: Inputs): Diff {
  const changed: string[] = [];
  if (news.name !== state.name) changed.push("name");
  for (const k of ["driver", "internal"]) if (news[k] !== undefined && news[k] !== state[k]) changed.push(k);
  if (news.options !== undefined && canonical(news.options) !== canonical(state.options ?? {})) changed.push("options");
  if ((news.attachable ?? false) !== (state.attachable ?? false)) changed.push("attachable");
  if (asSet(news.labels) !== asSet(state.labels)) changed.push("labels");
  return diffOf(changed, () => true);
}

function labelSet(labels: Record<string, string> | null): { label: string; value: string }[] {
  return Object.entries(labels ?? {})
    .map(([label, value]) => ({ label, value }))
    .sort((a, b) => a.label.localeCompare(b.label));
}

function refuseUnknown(what: string, inputs: Inputs, known: ReadonlySet<string>): void {
  const unknown = Object.keys(inputs).filter((k) => !known.has(k) && !k.startsWith("__"));
  if (unknown.length > 0) {
    throw new Error(
      `${what}: the e2e engine does not translate the input(s) ${unknown.join(", ")}; teach test/e2e/providers.ts what the provider does with them before using them`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// effects on the hosts

/** Child processes of the running steps, so a kill can end them (like Ctrl-C twice). */
export class Processes {
  private readonly running = new Set<ChildProcess>();
  killed = false;

  /** Runs `ssh args...` with stdin; resolves with the exit code and output. */
  run(args: readonly string[], stdin: string, timeoutMs = 15 * 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    if (this.killed) return Promise.resolve({ code: -1, stdout: "", stderr: "the apply was killed" });
    return new Promise((resolve) => {
      const child = spawn("ssh", [...args], { stdio: ["pipe", "pipe", "pipe"] });
      this.running.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      child.stdin.on("error", () => undefined);
      child.stdin.end(stdin);
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        this.running.delete(child);
        resolve({
          code: code ?? -1,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8") + (signal ? `\n(ssh ended by ${signal})` : ""),
        });
      });
    });
  }

  /** Kills every running ssh process (SIGKILL, as `kill -9` of pulumi takes its plugins with it). */
  killAll(): void {
    this.killed = true;
    for (const c of this.running) c.kill("SIGKILL");
  }
}

/**
 * One SSH connection per host and user, shared by the sessions (OpenSSH multiplexing). Each
 * command still gets its own session and shell, as with the provider's one connection per
 * command; on 2 shared cores, a key exchange per step made a parallel apply several times slower.
 */
function multiplex(workdir: string): string[] {
  return ["-o", "ControlMaster=auto", "-o", `ControlPath=${path.join(workdir, "cm-%C")}`, "-o", "ControlPersist=60"];
}

/** Loopback only: the engine reaches nothing but the test hosts. */
function assertLoopback(address: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(address)) throw new Error(`refusing to connect to ${address}: the e2e engine only reaches its test hosts on loopback`);
}

/**
 * Writes a file once, atomically (steps run in parallel: an ssh must never read a file another
 * step is halfway through writing).
 */
function writeOnce(file: string, content: string, mode: number): string {
  if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === content) return file;
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
  return file;
}

/** A private key from a resource's inputs, in a 0600 file of the workdir (ssh reads keys from files). */
function keyFile(workdir: string, privateKey: string): string {
  const file = path.join(workdir, `engine-key-${crypto.createHash("sha256").update(privateKey).digest("hex").slice(0, 12)}`);
  return writeOnce(file, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, 0o600);
}

export interface Connection {
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
  readonly privateKey?: string;
  readonly hostKey?: string;
}

/**
 * remote.Command's run (commandOutputs.go lines 30-108): one SSH session, the command string to
 * the login shell, stdin piped when non-empty (line 73), stdout and stderr kept with one trailing
 * newline removed (lines 103-106); a failure is `<err>: running "<cmd>":\n<stdout+stderr>` (line
 * 101), and leaves the outputs as they were.
 */
export async function runRemoteCommand(
  procs: Processes,
  workdir: string,
  conn: Connection,
  command: string,
  stdin: string | undefined,
): Promise<{ ok: boolean; stdout: string; stderr: string; error?: string }> {
  assertLoopback(conn.host);
  if (!conn.privateKey) throw new Error("connection.privateKey is required here (the engine has no ssh agent)");
  const port = conn.port ?? 22;
  const knownHosts = writeOnce(path.join(workdir, `engine-known_hosts.${port}`), `[${conn.host}]:${port} ${conn.hostKey ?? ""}\n`, 0o644);
  const r = await procs.run(
    [
      "-F",
      "/dev/null",
      "-i",
      keyFile(workdir, conn.privateKey),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "LogLevel=ERROR",
      ...multiplex(workdir),
      "-p",
      String(port),
      `${conn.user ?? "root"}@${conn.host}`,
      command,
    ],
    stdin ?? "",
  );
  const trim = (s: string) => (s.endsWith("\n") ? s.slice(0, -1) : s);
  if (r.code !== 0)
    return {
      ok: false,
      stdout: r.stdout,
      stderr: r.stderr,
      error: `Process exited with status ${r.code}: running ${JSON.stringify(command.slice(0, 200))}:\n${r.stdout}${r.stderr}`,
    };
  return { ok: true, stdout: trim(r.stdout), stderr: trim(r.stderr) };
}

const DOCKER_API_PY = fs.readFileSync(path.join(__dirname, "docker-api.py"), "utf8");

/** The Docker Engine API of one host, reached like the provider does (ssh as its user, the docker group). */
export class DockerApi {
  private version?: string;
  constructor(
    private readonly procs: Processes,
    private readonly sshArgs: readonly string[],
  ) {}

  /**
   * From the provider's inputs: `host: ssh://user@address:port` and its `sshOpts` (the host key
   * pinned with KnownHostsCommand), with the suite's key (the provider uses the ssh agent).
   */
  static fromProvider(procs: Processes, providerInputs: Inputs, keyPath: string, workdir: string): DockerApi {
    const m = /^ssh:\/\/([^@]+)@([^:/]+):(\d+)$/.exec(String(providerInputs.host));
    if (!m) throw new Error(`docker provider host ${String(providerInputs.host)}: expected ssh://user@address:port`);
    assertLoopback(m[2]!);
    // a provider's inputs reach the engine as strings, lists JSON-encoded (provider config)
    const raw = providerInputs.sshOpts;
    const opts = (typeof raw === "string" ? (JSON.parse(raw) as string[]) : (raw as string[] | undefined)) ?? [];
    return new DockerApi(procs, [
      "-F",
      "/dev/null",
      "-i",
      keyPath,
      "-o",
      "IdentitiesOnly=yes",
      ...opts,
      "-o",
      "ConnectTimeout=10",
      "-o",
      "LogLevel=ERROR",
      ...multiplex(workdir),
      "-p",
      m[3]!,
      `${m[1]}@${m[2]}`,
    ]);
  }

  /** One request; `path` without the version prefix. */
  async call(method: string, apiPath: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
    if (!this.version && apiPath !== "/version") {
      const v = await this.call("GET", "/version");
      this.version = (v.json as { ApiVersion: string }).ApiVersion;
    }
    const prefix = this.version ? `/v${this.version}` : "";
    const script = `import base64;exec(base64.b64decode('${Buffer.from(DOCKER_API_PY).toString("base64")}'))`;
    const r = await this.procs.run(
      [...this.sshArgs, `python3 -c "${script}" ${method} '${prefix}${apiPath}'`],
      body === undefined ? "" : JSON.stringify(body),
      10 * 60_000,
    );
    if (r.code !== 0) throw new Error(`docker API ${method} ${apiPath}: ssh exited ${r.code}: ${r.stderr.trim()}`);
    const res = JSON.parse(r.stdout) as { status: number; body: string };
    let json: unknown = undefined;
    try {
      json = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text: res.body };
  }

  /** The API version the daemon speaks (what the provider's client negotiates). */
  async apiVersion(): Promise<string> {
    if (!this.version) await this.call("GET", "/_ping");
    return this.version!;
  }
}

/** Compares "1.41" and "1.44" as versions. */
export function apiLessThan(a: string, b: string): boolean {
  const [a1, a2] = a.split(".").map(Number);
  const [b1, b2] = b.split(".").map(Number);
  return a1! < b1! || (a1 === b1 && a2! < b2!);
}
