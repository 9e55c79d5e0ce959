/**
 * The end-to-end runner: takes the remote commands that the program registers for a stack (under
 * Pulumi's mock runtime: the exact `create` strings, stdin, connection and dependencies that
 * `pulumi up` would use) and runs them over SSH on the test hosts in dependency order.
 */
import type { Registration, StackRun } from "../harness";
import { mustRoot, ssh, type HostName, type RunResult, type SshTarget, type TestHosts } from "./hosts";

export interface PlannedCommand {
  readonly name: string;
  readonly target: SshTarget;
  readonly create: string;
  readonly delete?: string;
  readonly stdin?: string;
  /** Names of the commands it runs after. */
  readonly after: readonly string[];
}

export interface Executed extends RunResult {
  readonly name: string;
}

const COMMAND = "command:remote:Command";

/**
 * The stack's commands in an order Pulumi could run them. Pulumi waits for a dependency on a
 * component until all of the component's children exist, and a resource also waits for what its
 * ancestors depend on: both are expanded here, so the order is never looser than the engine's.
 */
export function planCommands(run: StackRun): PlannedCommand[] {
  const byUrn = new Map(run.registrations.map((r) => [r.urn, r]));
  const children = new Map<string, Registration[]>();
  for (const r of run.registrations) children.set(r.parent, [...(children.get(r.parent) ?? []), r]);
  const customsUnder = (urn: string): Registration[] => {
    const r = byUrn.get(urn);
    if (!r) return []; // a read (StackReference): nothing to run
    if (r.custom) return [r];
    return (children.get(urn) ?? []).flatMap((c) => customsUnder(c.urn));
  };
  const inherited = (r: Registration): string[] => {
    const own = [...r.dependsOn];
    const parent = byUrn.get(r.parent);
    return parent ? [...own, ...inherited(parent)] : own;
  };

  const commands = run.registrations.filter((r) => r.type === COMMAND);
  const after = new Map(
    commands.map((c) => [
      c.name,
      [...new Set(inherited(c).flatMap(customsUnder).filter((d) => d.type === COMMAND && d.name !== c.name).map((d) => d.name))],
    ]),
  );
  // Kahn's algorithm, registration order among the ready ones
  const done = new Set<string>();
  const ordered: Registration[] = [];
  while (ordered.length < commands.length) {
    const next = commands.find((c) => !done.has(c.name) && (after.get(c.name) ?? []).every((d) => done.has(d)));
    if (!next) throw new Error(`dependency cycle among ${commands.filter((c) => !done.has(c.name)).map((c) => c.name).join(", ")}`);
    done.add(next.name);
    ordered.push(next);
  }
  return ordered.map((c) => {
    const conn = c.inputs.connection as { host: string; port: number; user: string; hostKey: string };
    return {
      name: c.name,
      target: { address: conn.host, port: conn.port, user: conn.user, hostKey: conn.hostKey },
      create: String(c.inputs.create),
      ...(typeof c.inputs.delete === "string" ? { delete: c.inputs.delete } : {}),
      ...(typeof c.inputs.stdin === "string" ? { stdin: c.inputs.stdin } : {}),
      after: after.get(c.name) ?? [],
    };
  });
}

/** Runs each command's `create` in order; stops at the first failure and throws with its output. */
export function applyCommands(plan: readonly PlannedCommand[], keyPath: string): Executed[] {
  const results: Executed[] = [];
  for (const c of plan) {
    const r = ssh(c.target, keyPath, c.create, c.stdin);
    results.push({ name: c.name, ...r });
    if (r.code !== 0) throw new Error(`${c.name} failed with exit code ${r.code}:\n${r.stderr}\n${r.stdout}`);
  }
  return results;
}

/**
 * `result(round, name)`: what the command `name` printed in that round (0-based) of `rounds`,
 * sark's and clu's commands together; throws when it did not run. `rounds` is read at each call.
 */
export function roundResults(rounds: readonly Readonly<Record<HostName, readonly Executed[]>>[]): (round: number, name: string) => Executed {
  return (round, name) => {
    const r = [...rounds[round]!.sark, ...rounds[round]!.clu].find((x) => x.name === name);
    if (!r) throw new Error(`no command ${name} in round ${round + 1}`);
    return r;
  };
}

/**
 * Every file under `dirs` (relative to /; a missing one is skipped) on the host: path, type, mode,
 * owner, size and mtime, then each regular file's sha256. Equal before and after a round: the
 * round changed nothing there.
 */
export function installedFiles(hosts: TestHosts, name: HostName, dirs: readonly string[]): string {
  const list = dirs.join(" ");
  return mustRoot(
    hosts,
    name,
    `cd / && for d in ${list}; do
  [ -e "$d" ] && find "$d" -printf '%p %y %m %U:%G %s %T@\\n'
done | sort
find ${list} -type f -exec sha256sum {} + 2>/dev/null | sort`,
  );
}
