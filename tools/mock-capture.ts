/**
 * Runs Pulumi code under the mock runtime and records every resource registration in full:
 * what `MockResourceArgs` leaves out (parent, dependsOn, protect, retainOnDelete,
 * deleteBeforeReplace, additionalSecretOutputs, which inputs are secret) included.
 * Used by the test harness and by `npm run synth`, so both see the same thing.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly parent: string;
  /** Inputs with secrets unwrapped. */
  readonly inputs: Record<string, unknown>;
  /** Dotted paths of inputs that were sent as secrets. */
  readonly secretPaths: readonly string[];
  /** Inputs with every secret replaced by "[secret]": what a plaintext view would show. */
  readonly plainInputs: Record<string, unknown>;
  readonly dependsOn: readonly string[];
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  readonly deleteBeforeReplace: boolean;
  readonly additionalSecretOutputs: readonly string[];
  /** Provider reference (`urn::id`), empty for the default provider. */
  readonly provider: string;
}

export interface CaptureOptions {
  readonly stack: string;
  /** Config values without the project prefix; objects are JSON-encoded as Pulumi does. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Secret config values (plaintext here, marked secret for the program). */
  readonly secrets: Readonly<Record<string, string>>;
  readonly preview: boolean;
  /** Outputs returned by StackReferences, by referenced stack name. */
  readonly stackOutputs?: Readonly<Record<string, Record<string, unknown>>>;
  /** Which of those outputs the referenced stack holds as secrets. @default [] */
  readonly secretOutputNames?: readonly string[];
  /** What a remote command prints, by resource name (an `up`, not a preview, reads it). @default "" */
  readonly commandStdout?: (name: string) => string | undefined;
}

/** A resource read rather than registered (a StackReference). */
export interface Read {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  /** What was read: for a StackReference, the stack's name. */
  readonly id: string;
  readonly parent: string;
}

export interface Capture {
  readonly registrations: Registration[];
  readonly reads: Read[];
  /** Resolves when no registration has been in flight for a few turns of the event loop. */
  settled(): Promise<void>;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VAL = "1b47061264138c4ac30d75fd1eb44270";

function unwrap(v: unknown, at: string, secrets: string[], mask: boolean): unknown {
  if (Array.isArray(v)) return v.map((x, i) => unwrap(x, `${at}[${i}]`, secrets, mask));
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG] === SECRET_VAL) {
      if (!mask) secrets.push(at);
      return mask ? "[secret]" : unwrap(o.value, at, [], false);
    }
    if (SECRET_SIG in o) return unwrap(o.value, at, secrets, mask); // resource references, assets
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x, at ? `${at}.${k}` : k, secrets, mask)]));
  }
  return v;
}

/** Sets up the mock runtime with the stack's config and starts recording. */
export async function startCapture(opts: CaptureOptions): Promise<Capture> {
  const registrations: Registration[] = [];
  const reads: Read[] = [];
  let pending = 0;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        if (args.type === "pulumi:pulumi:StackReference") {
          const ref = String(args.inputs.name);
          const outputs = opts.stackOutputs?.[ref];
          if (!outputs) throw new Error(`no mocked outputs for stack reference ${ref}`);
          const secret = (opts.secretOutputNames ?? []).filter((k) => k in outputs);
          return { id: ref, state: { name: ref, outputs, secretOutputNames: secret } };
        }
        if (args.type === "command:remote:Command" && !opts.preview) {
          return { id: `${args.name}-id`, state: { ...args.inputs, stdout: opts.commandStdout?.(args.name) ?? "", stderr: "" } };
        }
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call(args) {
        return args.inputs;
      },
    },
    "dgx-storage",
    opts.stack,
    opts.preview,
  );
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.config)) all[`dgx-storage:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(opts.secrets)) all[`dgx-storage:${k}`] = v;
  pulumi.runtime.setAllConfig(
    all,
    Object.keys(opts.secrets).map((k) => `dgx-storage:${k}`),
  );

  type Callback = (err: unknown, res: { getUrn(): string } | undefined) => void;
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: Callback): void;
    readResource(req: ReadRequest, cb: Callback): void;
  };
  // reads (StackReference) are recorded with the id they read and no inputs of note
  const originalRead = monitor.readResource.bind(monitor);
  monitor.readResource = (req, callback) => {
    pending++;
    originalRead(req, (err, res) => {
      if (!err && res) {
        reads.push({ urn: res.getUrn(), type: req.getType(), name: req.getName(), id: req.getId(), parent: req.getParent() });
      }
      pending--;
      callback(err, res);
    });
  };
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    pending++;
    original(req, (err, res) => {
      if (!err && res) {
        const obj = req.getObject().toJavaScript();
        const secretPaths: string[] = [];
        registrations.push({
          urn: res.getUrn(),
          type: req.getType(),
          name: req.getName(),
          custom: req.getCustom(),
          parent: req.getParent(),
          inputs: unwrap(obj, "", secretPaths, false) as Record<string, unknown>,
          secretPaths,
          plainInputs: unwrap(obj, "", [], true) as Record<string, unknown>,
          dependsOn: req.getDependenciesList(),
          protect: req.getProtect() === true,
          retainOnDelete: req.getRetainondelete() === true,
          deleteBeforeReplace: req.getDeletebeforereplace() === true,
          additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
          provider: req.getProvider(),
        });
      }
      pending--;
      callback(err, res);
    });
  };
  return {
    registrations,
    reads,
    async settled() {
      let quiet = 0;
      for (let i = 0; i < 5000 && quiet < 20; i++) {
        await new Promise((r) => setImmediate(r));
        quiet = pending === 0 ? quiet + 1 : 0;
      }
      if (pending !== 0) throw new Error(`${pending} resource registrations never finished`);
    },
  };
}

/** The parts of the gRPC ReadResourceRequest that are read here. */
interface ReadRequest {
  getType(): string;
  getName(): string;
  getId(): string;
  getParent(): string;
}

/** The parts of the gRPC RegisterResourceRequest that are read here. */
interface RegisterRequest {
  getObject(): { toJavaScript(): unknown };
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean | undefined;
  getAdditionalsecretoutputsList(): string[];
  getProvider(): string;
}
