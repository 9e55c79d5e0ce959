/**
 * lib.sh's one wait_healthy (container-switch.sh and migrate.sh): against a stand-in docker that
 * answers `docker container inspect` with the next of a list of states, one per probe.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { SCRIPTS_DIR } from "../../components/render/command";
import { hostPathEnv } from "../../components/render/host-paths";

/** Runs `wait_healthy ARGS` with docker answering STATES ("<running> <health>") in turn, the last one from then on. */
function waitHealthy(states: readonly string[], args: readonly string[]): { code: number; probes: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wait-healthy-"));
  fs.writeFileSync(path.join(dir, "states"), states.join("\n") + "\n");
  fs.writeFileSync(
    path.join(dir, "docker"),
    `#!/usr/bin/env bash
n=$(( $(cat "${dir}/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"${dir}/count"
total=$(wc -l <"${dir}/states")
sed -n "$(( n < total ? n : total ))p" "${dir}/states"
`,
    { mode: 0o755 },
  );
  const r = spawnSync("bash", ["-c", `. ${path.join(SCRIPTS_DIR, "lib.sh")}; sleep() { :; }; wait_healthy "$@"`, "wait-healthy", ...args], {
    env: { ...process.env, ...hostPathEnv(), PATH: `${dir}:${process.env.PATH}` },
    encoding: "utf8",
  });
  const probes = Number(fs.readFileSync(path.join(dir, "count"), "utf8"));
  fs.rmSync(dir, { recursive: true });
  return { code: r.status ?? -1, probes };
}

describe("wait_healthy", () => {
  it("GIVEN starting, then healthy THEN 0 at the first healthy probe", () => {
    expect(waitHealthy(["true starting", "true starting", "true healthy"], ["c", "60"])).toEqual({ code: 0, probes: 3 });
  });

  it("GIVEN unhealthy, then healthy (Docker marks it healthy again at a passing probe) THEN it waits it out by default", () => {
    expect(waitHealthy(["true starting", "true unhealthy", "true unhealthy", "true healthy"], ["c", "60"])).toEqual({ code: 0, probes: 4 });
  });

  it("GIVEN --give-up-unhealthy (migrate.sh) THEN 1 at the first unhealthy probe", () => {
    expect(waitHealthy(["true starting", "true unhealthy", "true healthy"], ["--give-up-unhealthy", "c", "60"])).toEqual({ code: 1, probes: 2 });
  });

  it("GIVEN a container that stops, or none at all THEN 1 at once", () => {
    expect(waitHealthy(["true starting", "false none"], ["c", "60"])).toEqual({ code: 1, probes: 2 });
    expect(waitHealthy([""], ["--give-up-unhealthy", "c", "60"])).toEqual({ code: 1, probes: 1 });
  });
});
