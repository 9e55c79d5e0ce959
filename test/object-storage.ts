/**
 * Object storage run locally for the cloud-copy tests and benchmark: s3rver (an S3 API server on
 * the file system) and Azurite (Microsoft's Azure Storage emulator), each a child process bound to
 * loopback, so a test that blocks on spawnSync (rclone, borg) does not block the server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** The repository root (not harness.ts's: that imports vitest, and the benchmark runs under tsx). */
const REPO = path.resolve(__dirname, "..");

/** s3rver's fixed credentials (s3rver lib/models/account.js: the default account). */
export const S3RVER_KEY = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;
/** Azurite's well-known development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface LocalServer {
  readonly port: number;
  /** What the server printed (for a failing test's message). */
  output(): string;
  stop(): Promise<void>;
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<{ port: number; output: () => string }> {
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), output: () => out });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it listened:\n${out}`));
    });
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
}

/** s3rver on `address` (loopback, or the test hosts' bridge), a free port, data in `dir`, with these buckets. */
export async function startS3rver(dir: string, buckets: readonly string[], address = "127.0.0.1", port = 0): Promise<LocalServer> {
  fs.mkdirSync(dir, { recursive: true });
  const bin = path.join(REPO, "node_modules", "s3rver", "bin", "s3rver.js");
  const child = spawn(process.execPath, [bin, "-d", dir, "-a", address, "-p", String(port), ...buckets.flatMap((b) => ["--configure-bucket", b])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const { port: bound, output } = await waitFor(child, /S3rver listening on [\d.]+:(\d+)/, "s3rver");
  return { port: bound, output, stop: stopper(child) };
}

/**
 * Azurite's blob service on `address`:`port`, data in `dir`; with `cert`/`key` it speaks HTTPS
 * (what rclone 1.60's account-key path asks for: https://<account>.<endpoint>). Production-style
 * URLs (the account as the host name's first label) are Azurite's default.
 */
export async function startAzurite(dir: string, opts: { address?: string; port?: number; cert?: string; key?: string } = {}): Promise<LocalServer> {
  fs.mkdirSync(dir, { recursive: true });
  const bin = path.join(REPO, "node_modules", "azurite", "dist", "src", "blob", "main.js");
  const args = [
    bin,
    "--blobHost",
    opts.address ?? "127.0.0.1",
    "--blobPort",
    String(opts.port ?? 10000),
    "--location",
    dir,
    "--skipApiVersionCheck",
    "--loose",
  ];
  if (opts.cert && opts.key) args.push("--cert", opts.cert, "--key", opts.key);
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const { port, output } = await waitFor(child, /successfully listens on https?:\/\/[^:]+:(\d+)/, "azurite");
  return { port, output, stop: stopper(child) };
}

/**
 * A front for s3rver that answers one request itself: GetBucketVersioning (`GET /<bucket>?versioning`),
 * with `status` (S3's answer for a versioned bucket is Enabled; "AccessDenied": S3's 403 to a key
 * whose policy lacks s3:GetBucketVersioning); every other request goes to
 * s3rver on `upstreamPort` unchanged (headers too, so rclone's signature still matches its Host).
 * It stands in for that answer only, for the test of cloud-copy.sh --versioned: s3rver keeps no
 * versions. A child process, like the servers above.
 */
export async function startVersioningFront(upstreamPort: number, status = "Enabled"): Promise<LocalServer> {
  const code = `
const http = require("node:http");
const [upstream, status] = process.argv.slice(1);
const server = http.createServer((req, res) => {
  const url = new URL(req.url || "/", "http://front");
  if (req.method === "GET" && url.searchParams.has("versioning") && url.pathname.split("/").filter(Boolean).length === 1) {
    if (status === "AccessDenied") {
      // S3's answer to a key whose policy lacks s3:GetBucketVersioning
      res.writeHead(403, { "content-type": "application/xml" });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      return;
    }
    res.writeHead(200, { "content-type": "application/xml" });
    res.end('<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>' + status + "</Status></VersioningConfiguration>");
    return;
  }
  const up = http.request({ host: "127.0.0.1", port: Number(upstream), method: req.method, path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode || 502, r.headers);
    r.pipe(res);
  });
  up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(up);
});
server.listen(0, "127.0.0.1", () => console.log("versioning front listening on 127.0.0.1:" + server.address().port));
`;
  const child = spawn(process.execPath, ["-e", code, String(upstreamPort), status], { stdio: ["ignore", "pipe", "pipe"] });
  const { port, output } = await waitFor(child, /versioning front listening on [\d.]+:(\d+)/, "the versioning front");
  return { port, output, stop: stopper(child) };
}
