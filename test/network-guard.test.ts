/**
 * The network guard (test/network-guard.ts, loaded before every unit test file) refuses what a
 * unit test must never do, before anything leaves the machine, and lets loopback through.
 */
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { isLoopback, reachableAddresses, refusedConnections } from "./network-guard";

// the guard's own afterEach requires an empty record: these tests check and clear what they caused
let expected: string[] = [];
afterEach(() => {
  const seen = refusedConnections().splice(0);
  expect(seen).toEqual(expected);
  expected = [];
});

describe("the network guard", () => {
  it("refuses a TCP connection to either server, in every call form, before a socket opens", () => {
    expected = ["connect to 192.168.68.69:22", "connect to 192.168.68.71:2375", "connect to 192.168.68.71:22", "connect to 192.168.68.69:80"];
    expect(() => net.connect({ host: "192.168.68.69", port: 22 })).toThrow(/network guard: a unit test tried to connect to 192\.168\.68\.69:22/);
    expect(() => net.createConnection(2375, "192.168.68.71")).toThrow(/network guard/);
    expect(() => new net.Socket().connect(22, "192.168.68.71")).toThrow(/network guard/);
    expect(() => new net.Socket().connect({ host: "192.168.68.69", port: 80 })).toThrow(/network guard/);
  });

  it("refuses a child process that names a server's address, sync or async", () => {
    expected = [
      "start a process naming 192.168.68.69: ssh -o BatchMode=yes maxvamp@192.168.68.69 true",
      "start a process naming 192.168.68.71: borg list ssh://borg-sark@192.168.68.71:22/data/borg-offsite/sark",
      "start a process naming 192.168.68.71: curl -s http://192.168.68.71:8000/",
      "start a process naming 192.168.68.69: ssh 192.168.68.69",
    ];
    expect(() => spawnSync("ssh", ["-o", "BatchMode=yes", "maxvamp@192.168.68.69", "true"])).toThrow(/network guard/);
    expect(() => execFileSync("borg", ["list", "ssh://borg-sark@192.168.68.71:22/data/borg-offsite/sark"])).toThrow(/network guard/);
    expect(() => spawn("curl", ["-s", "http://192.168.68.71:8000/"])).toThrow(/network guard/);
    expect(() => execFile("ssh", ["192.168.68.69"])).toThrow(/network guard/);
  });

  it("lets loopback, Unix sockets and processes without a reachable address through", async () => {
    const server = http.createServer((_, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) =>
        http
          .get(`http://127.0.0.1:${port}/`, (res) => {
            let b = "";
            res.on("data", (c) => (b += c));
            res.on("end", () => resolve(b));
          })
          .on("error", reject),
      );
      expect(body).toBe("ok");
    } finally {
      server.close();
    }
    expect(spawnSync("echo", ["192.0.2.71", "127.0.0.1", "0.0.0.0"], { encoding: "utf8" }).stdout).toBe("192.0.2.71 127.0.0.1 0.0.0.0\n");
  });

  it("classifies addresses", () => {
    expect(["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"].every(isLoopback)).toBe(true);
    expect(["192.168.68.69", "10.0.0.1", "example.com", "::"].some(isLoopback)).toBe(false);
    expect(reachableAddresses("ssh://u@192.168.68.71:22 192.0.2.5 198.51.100.7 203.0.113.9 127.0.0.1 0.0.0.0 10.1.2.3 v1.2.3.4.5")).toEqual([
      "192.168.68.71",
      "10.1.2.3",
    ]);
  });
});
