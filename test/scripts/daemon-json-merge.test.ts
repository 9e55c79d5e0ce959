import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseHostConfig } from "../../components/config";
import { daemonJsonFragment, renderJson } from "../../components/render/daemon-json";
import { validConfig } from "../fixtures";
import { makeRoot, runScript, snapshotTree } from "./run";

const FRAGMENT = JSON.stringify(daemonJsonFragment(parseHostConfig(validConfig(), { source: "fixture" }).docker.daemon));
const MANAGED = JSON.parse(FRAGMENT) as Record<string, unknown>;
const DAEMON_JSON = "etc/docker/daemon.json";

/** NVIDIA's daemon.json as the DGX OS / nvidia-container-toolkit packages ship it. */
const NVIDIA_DGX = `{
    "default-runtime": "nvidia",
    "runtimes": {
        "nvidia": {
            "path": "nvidia-container-runtime",
            "runtimeArgs": []
        }
    }
}
`;
const DEBIAN_UNIT = `[Unit]
Description=Docker Application Container Engine
[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS
`;
/** DGX OS style override: the storage driver passed as a flag. */
const DGX_OVERRIDE = `[Service]
ExecStart=
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock \\
    -s overlay2
`;

const merge = (root: string, ...args: string[]) => runScript("daemon-json-merge", args.length ? args : ["apply", FRAGMENT], { ROOT: root });
const readJson = (root: string) => JSON.parse(fs.readFileSync(path.join(root, DAEMON_JSON), "utf8")) as Record<string, unknown>;

describe("daemon-json-merge.sh", () => {
  it.each([
    ["no file", undefined, {}],
    ["an empty file", "", {}],
    ["NVIDIA's DGX default", NVIDIA_DGX, JSON.parse(NVIDIA_DGX)],
    ["unrelated custom keys", '{"data-root":"/raid/docker","dns":["192.0.2.53"],"log-driver":"local"}', { "data-root": "/raid/docker", dns: ["192.0.2.53"] }],
  ])("GIVEN %s WHEN applied twice THEN managed keys are added, foreign keys kept, second run changes nothing", (_what, before, foreign) => {
    const root = makeRoot(before === undefined ? {} : { [DAEMON_JSON]: before });
    const first = merge(root);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/daemon\.json: changed sha256=[0-9a-f]{64}/);
    expect(readJson(root)).toEqual({ ...foreign, ...MANAGED });
    // the file on disk is the stable rendering (valid JSON, keys sorted)
    const text = fs.readFileSync(path.join(root, DAEMON_JSON), "utf8");
    expect(text).toBe(renderJson({ ...foreign, ...MANAGED }));

    const tree = snapshotTree(root);
    const second = merge(root);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/daemon\.json: unchanged/);
    expect(snapshotTree(root)).toEqual(tree);
  });

  it("GIVEN invalid JSON THEN it stops with the file named and leaves it byte for byte", () => {
    const broken = '{"runtimes": {"nvidia": ';
    const root = makeRoot({ [DAEMON_JSON]: broken });
    const r = merge(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/etc/docker/daemon.json is not valid JSON");
    expect(r.stderr).toContain("left untouched");
    expect(fs.readFileSync(path.join(root, DAEMON_JSON), "utf8")).toBe(broken);
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/backups"))).toBe(false);
  });

  it("GIVEN a JSON array THEN it refuses it", () => {
    const root = makeRoot({ [DAEMON_JSON]: "[]" });
    const r = merge(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not an object");
  });

  it("keeps a backup of the previous file", () => {
    const root = makeRoot({ [DAEMON_JSON]: NVIDIA_DGX });
    expect(merge(root).code).toBe(0);
    const dir = path.join(root, "var/lib/dgx-storage/backups");
    const copies = fs.readdirSync(dir);
    expect(copies).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, copies[0]!), "utf8")).toBe(NVIDIA_DGX);
  });

  it("GIVEN DGX OS's override passing -s overlay2 THEN storage-driver is left out of the file, with a notice", () => {
    const root = makeRoot({
      [DAEMON_JSON]: NVIDIA_DGX,
      "lib/systemd/system/docker.service": DEBIAN_UNIT,
      "etc/systemd/system/docker.service.d/override.conf": DGX_OVERRIDE,
    });
    const r = merge(root);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("storage-driver: already passed to dockerd as a flag in /etc/systemd/system/docker.service.d/override.conf");
    const { "storage-driver": _driver, ...rest } = MANAGED;
    expect(readJson(root)).toEqual({ ...JSON.parse(NVIDIA_DGX), ...rest });
  });

  it("GIVEN a flag with another value THEN it fails naming the unit file and writes nothing", () => {
    const root = makeRoot({
      [DAEMON_JSON]: NVIDIA_DGX,
      "lib/systemd/system/docker.service": DEBIAN_UNIT,
      "etc/default/docker": 'DOCKER_OPTS="--storage-driver=devicemapper"\n',
    });
    const r = merge(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('storage-driver="devicemapper" as a command-line flag');
    expect(r.stderr).toContain("/lib/systemd/system/docker.service");
    expect(fs.readFileSync(path.join(root, DAEMON_JSON), "utf8")).toBe(NVIDIA_DGX);
  });

  it("ignores a flag in an ExecStart that a drop-in reset", () => {
    const root = makeRoot({
      "lib/systemd/system/docker.service": "[Service]\nExecStart=/usr/sbin/dockerd -s devicemapper\n",
      "etc/systemd/system/docker.service.d/10-reset.conf": "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd://\n",
    });
    const r = merge(root);
    expect(r.code).toBe(0);
    expect(readJson(root)).toEqual(MANAGED);
  });

  it("GIVEN a key dropped from the config THEN the value from before this project comes back", () => {
    const root = makeRoot({ [DAEMON_JSON]: '{"log-driver":"local","runtimes":{}}' });
    expect(merge(root).code).toBe(0);
    expect(readJson(root)["log-driver"]).toBe("json-file");
    const { "log-driver": _l, "log-opts": _o, ...fewer } = MANAGED;
    const r = merge(root, "apply", JSON.stringify(fewer));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('~ log-driver = "local"');
    expect(readJson(root)).toEqual({ ...fewer, "log-driver": "local", runtimes: {} });
  });

  it("remove restores the file as it was before the first apply (destroy)", () => {
    const root = makeRoot({ [DAEMON_JSON]: NVIDIA_DGX });
    expect(merge(root).code).toBe(0);
    expect(merge(root, "remove").code).toBe(0);
    expect(readJson(root)).toEqual(JSON.parse(NVIDIA_DGX));
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/daemon-json.state.json"))).toBe(false);
  });

  it("DRY_RUN=1 reports the change and writes nothing", () => {
    const root = makeRoot({ [DAEMON_JSON]: NVIDIA_DGX });
    const before = snapshotTree(root);
    const r = runScript("daemon-json-merge", ["apply", FRAGMENT], { ROOT: root, DRY_RUN: "1" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("+ storage-driver");
    expect(r.stdout).toContain("dry run: daemon.json would change");
    expect(snapshotTree(root)).toEqual(before);
  });

  it("rejects bad usage and a non-object fragment", () => {
    const root = makeRoot();
    expect(merge(root, "apply").stderr).toContain("usage");
    expect(merge(root, "apply", "[1]").stderr).toContain("must be a JSON object");
  });
});
