// The test setup: a real asyncgw gateway and worker, built from this
// repository, on a real redis-server, with an upstream and a webhook
// receiver run here in Node. Every process listens on 127.0.0.1 on a free
// port and is stopped by its PID; every wait is bounded. What cannot be had
// (go, redis-server) fails the test: nothing is skipped.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect as tcpConnect, createServer as tcpServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root: the directory above this package that holds go.mod. */
export const repoRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, "go.mod")) && existsSync(path.join(dir, "cmd", "asyncgw"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error("harness: cannot find the asyncgw repository (go.mod) above " + fileURLToPath(import.meta.url));
    dir = up;
  }
})();

/** waitUntil polls check until it returns a value, at most ms long. */
export async function waitUntil<T>(what: string, ms: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** freePort returns a port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = tcpServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** asyncgwBinary returns $ASYNCGW_BIN, or builds cmd/asyncgw into dir with go build. */
export async function asyncgwBinary(dir: string): Promise<string> {
  const given = process.env["ASYNCGW_BIN"];
  if (given) {
    if (!existsSync(given)) throw new Error(`ASYNCGW_BIN=${given} does not exist`);
    return given;
  }
  const out = path.join(dir, "asyncgw");
  await new Promise<void>((resolve, reject) => {
    execFile("go", ["build", "-o", out, "./cmd/asyncgw"], { cwd: repoRoot, timeout: 300_000 }, (err, _stdout, stderr) => {
      if (err) {
        reject(new Error(`go build ./cmd/asyncgw failed (these tests need Go to build the gateway): ${err.message}\n${stderr}`));
      } else {
        resolve();
      }
    });
  });
  return out;
}

/** A process the tests started. */
export class Proc {
  readonly child: ChildProcess;
  output = "";
  readonly exited: Promise<number | null>;

  constructor(readonly name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(cmd, args, { env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, sig) => resolve(code ?? (sig ? -1 : null)));
      this.child.once("error", (err) => {
        this.output += `\n${name}: ${err.message}\n`;
        resolve(-2);
      });
    });
    const add = (b: Buffer) => {
      this.output += b.toString();
    };
    this.child.stdout?.on("data", add);
    this.child.stderr?.on("data", add);
  }

  /** waitLog waits until the output holds text. */
  async waitLog(text: string, ms: number): Promise<void> {
    await waitUntil(`${this.name} to log ${JSON.stringify(text)}`, ms, async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${this.name} exited:\n${this.output}`);
      }
      return this.output.includes(text);
    });
  }

  /** stop sends signal to the process (by its PID) and waits for it to exit; SIGKILL after ms. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 10_000): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    process.kill(pid, signal);
    const t = setTimeout(() => {
      if (this.child.exitCode === null && this.child.signalCode === null) process.kill(pid, "SIGKILL");
    }, ms);
    await this.exited;
    clearTimeout(t);
  }
}

/** startRedis runs a redis-server on a free port and waits until it answers PING. */
export async function startRedis(dir: string): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const proc = new Proc("redis-server", "redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", dir, "--protected-mode", "no",
  ]);
  try {
    await waitUntil(`redis-server on port ${port} to answer PING`, 10_000, async () => {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null || proc.output.includes("ENOENT")) {
        throw new Error(`redis-server did not start (these tests need redis-server on PATH; make test installs it with scripts/ensure-redis.sh):\n${proc.output}`);
      }
      return ping(port);
    });
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
  return { proc, url: `redis://127.0.0.1:${port}/0` };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, "127.0.0.1");
    s.setTimeout(1000, () => s.destroy());
    s.on("error", () => resolve(false));
    s.on("close", () => resolve(false));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (b) => {
      resolve(b.toString().startsWith("+PONG"));
      s.destroy();
    });
  });
}

/** A call the upstream received. */
export interface Call {
  path: string;
  body: string;
  headers: IncomingMessage["headers"];
}

/**
 * Upstream is the service behind the gateway: it answers 201 with what it
 * got. A body `{"hold": "name"}` is held until release(name); `{"fail":
 * true}` is refused with 400 (the job ends `failed`).
 */
export class Upstream {
  readonly calls: Call[] = [];
  private readonly gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.url = await listen(this.server);
  }

  private gate(name: string) {
    let g = this.gates.get(name);
    if (!g) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      g = { promise, open };
      this.gates.set(name, g);
    }
    return g;
  }

  /** release lets the calls held under name answer. */
  release(name: string): void {
    this.gate(name).open();
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const body = await readBody(req);
    this.calls.push({ path: req.url ?? "", body: body.toString(), headers: req.headers });
    let v: { hold?: string; fail?: boolean } = {};
    try {
      v = JSON.parse(body.toString());
    } catch {
      // not JSON: answered as usual
    }
    if (v.hold) await this.gate(v.hold).promise;
    if (v.fail) {
      res.writeHead(400, { "Content-Type": "application/json" }).end(JSON.stringify({ refused: true }));
      return;
    }
    res.writeHead(201, { "Content-Type": "application/json", "X-Upstream": "yes" }).end(JSON.stringify({ received: v }));
  }

  /** callsWith returns the calls whose body contains text. */
  callsWith(text: string): Call[] {
    return this.calls.filter((c) => c.body.includes(text));
  }
}

/** A webhook delivery as the receiver got it. */
export interface Delivery {
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** Receiver takes webhook deliveries and answers 204. */
export class Receiver {
  readonly deliveries: Delivery[] = [];
  server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer(async (req, res) => {
      this.deliveries.push({ headers: req.headers, body: await readBody(req) });
      res.writeHead(204).end();
    });
    this.url = await listen(this.server);
  }
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

/** listen starts server on a free loopback port and returns its base URL. */
export function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`));
  });
}

/** closeServer stops server, cutting its open connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A running asyncgw with everything around it. */
export interface Env {
  /** The gateway's base URL. */
  baseUrl: string;
  /** The tenant's API key. */
  apiKey: string;
  /** The tenant's webhook signing secret. */
  secret: string;
  upstream: Upstream;
  receiver: Receiver;
  gateway: Proc;
  worker: Proc;
  /** restartGateway stops the gateway (SIGTERM) and starts it again on the same port. */
  restartGateway(between?: () => Promise<void>): Promise<void>;
  /** close stops every process and server, and removes the temporary directory. */
  close(): Promise<void>;
}

/** startEnv starts Redis, the upstream, the receiver, an asyncgw gateway and an asyncgw worker. */
export async function startEnv(): Promise<Env> {
  const tmp = await mkdtemp(path.join(tmpdir(), "asyncgw-ts-"));
  const cleanups: (() => Promise<void>)[] = [() => rm(tmp, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const bin = await asyncgwBinary(tmp);
    const redis = await startRedis(tmp);
    cleanups.push(() => redis.proc.stop("SIGKILL"));
    const upstream = new Upstream();
    await upstream.start();
    cleanups.push(() => closeServer(upstream.server));
    const receiver = new Receiver();
    await receiver.start();
    cleanups.push(() => closeServer(receiver.server));

    const apiKey = "agw_" + randomBytes(20).toString("hex");
    const digest = createHash("sha256").update(apiKey).digest("hex");
    const secret = "whsec_" + randomBytes(32).toString("base64");
    const port = await freePort();
    const config = path.join(tmp, "asyncgw.yaml");
    await writeFile(config, `listen: 127.0.0.1:${port}
redis:
  url: ${redis.url}
  prefix: ts-${randomBytes(4).toString("hex")}
queues: {default: 1}
worker:
  concurrency: 4
  shutdown_timeout: 2s
gateway:
  shutdown_timeout: 2s
  drain_delay: 0s
auth:
  enabled: true
  tenants:
    - name: acme
      keys: [{sha256: "${digest}"}]
      webhook_secret: "${secret}"
webhooks:
  allow_http: true
  allow_cidrs: [127.0.0.1/32]
  retry_schedule: [100ms, 100ms]
routes:
  - name: orders
    method: POST
    path: /v1/orders/{customer}
    upstream: ${upstream.url}/orders/{customer}
    queue: default
    timeout: 30s
    max_attempts: 3
    backoff: {base: 100ms, max: 1s}
  - name: ledger
    method: POST
    path: /v1/ledger
    upstream: ${upstream.url}/ledger
    queue: default
    timeout: 30s
    max_attempts: 3
    backoff: {base: 100ms, max: 1s}
`);
    const env = childEnv();
    const baseUrl = `http://127.0.0.1:${port}`;
    const startGateway = async () => {
      const p = new Proc("asyncgw gateway", bin, ["gateway", "--config", config], env);
      await p.waitLog('msg="gateway listening"', 30_000);
      await waitUntil("GET /readyz to answer 200", 30_000, async () => (await fetch(baseUrl + "/readyz")).status === 200);
      return p;
    };
    const worker = new Proc("asyncgw worker", bin, ["worker", "--config", config], env);
    cleanups.push(() => worker.stop("SIGKILL"));
    let gateway = await startGateway();
    cleanups.push(() => gateway.stop("SIGKILL"));
    await worker.waitLog('msg="workers started"', 30_000);
    const e: Env = {
      baseUrl, apiKey, secret, upstream, receiver, gateway, worker, close,
      async restartGateway(between) {
        await gateway.stop("SIGTERM");
        if (between) await between();
        gateway = await startGateway();
        e.gateway = gateway;
      },
    };
    return e;
  } catch (err) {
    await close();
    throw err;
  }
}

/** childEnv is this process's environment without ASYNCGW_ variables. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ASYNCGW_")) env[k] = v;
  return env;
}

/** What a Proxy does with one request. */
export type ProxyAction =
  /** pass it on and back */
  | { kind: "forward" }
  /** pass it on, then cut the client's connection without an answer */
  | { kind: "drop-answer" }
  /** answer it here */
  | { kind: "answer"; status: number; headers?: Record<string, string>; body?: string };

/** A request the proxy saw. */
export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
  /** The gateway's answer, when the request was passed on. */
  answer?: { status: number; body: string };
}

/**
 * Proxy stands between the client and the gateway, passing requests on
 * (streams included) unless decide says otherwise.
 */
export class Proxy {
  readonly seen: ProxiedRequest[] = [];
  server!: Server;
  url = "";

  constructor(private readonly target: string, private readonly decide: (r: ProxiedRequest) => ProxyAction) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.url = await listen(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const r: ProxiedRequest = { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, body: await readBody(req) };
    this.seen.push(r);
    const action = this.decide(r);
    if (action.kind === "answer") {
      res.writeHead(action.status, action.headers).end(action.body ?? "");
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== "host" && k !== "connection") headers[k] = v;
    const { request } = await import("node:http");
    const up = request(this.target + r.path, { method: r.method, headers }, (ur) => {
      if (action.kind === "drop-answer") {
        const parts: Buffer[] = [];
        ur.on("data", (b: Buffer) => parts.push(b));
        ur.on("end", () => {
          r.answer = { status: ur.statusCode ?? 0, body: Buffer.concat(parts).toString() };
          res.socket?.destroy();
        });
        return;
      }
      r.answer = { status: ur.statusCode ?? 0, body: "" };
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      res.flushHeaders();
      ur.on("data", (b: Buffer) => res.write(b));
      ur.on("end", () => res.end());
      ur.on("error", () => res.socket?.destroy());
    });
    up.on("error", () => res.socket?.destroy());
    res.on("close", () => up.destroy());
    up.end(r.body);
  }
}
