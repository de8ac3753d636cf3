// A real gateway process for browser tests: the binary `cargo test` built, on embedded defaults
// (SQLite, qdrant-edge, the real models) in a fresh data directory, on a port the system hands
// out (bound on port 0 and released: no guessing, no clash with a port in use).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** A loopback port the system has just handed out (bound on port 0, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export class Gateway {
  /** A gateway (not started yet) on a port the system handed out; restarts keep it. */
  static async create(name, env = {}) {
    return new Gateway(name, env, await freePort());
  }

  constructor(name, env, port) {
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.data = mkdtempSync(join(tmpdir(), `coach-${name}-`));
    this.env = env;
    this.process = null;
  }

  /** Starts the gateway and waits until it is ready. */
  async start() {
    if (!process.env.GATEWAY_BIN) throw new Error("GATEWAY_BIN is not set");
    this.process = spawn(process.env.GATEWAY_BIN, ["serve"], {
      env: {
        ...process.env,
        GATEWAY__HTTP__ADDR: `127.0.0.1:${this.port}`,
        GATEWAY__PUBLIC_URL: this.base,
        GATEWAY__DATA_DIR: this.data,
        GATEWAY__BRAIN__MODELS_DIR: process.env.MODELS_DIR,
        GATEWAY__LOG__FILTER: "warn",
        ...this.env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const exited = new Promise((r) => {
      this.process.once("exit", (code) => r(code));
      this.process.once("error", (e) => r(e.message));
    });
    for (let i = 0; i < 600; i++) {
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("running"), 0))]);
      if (code !== "running") throw new Error(`the gateway exited with ${code}`);
      try {
        const r = await fetch(`${this.base}/readyz`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the gateway did not become ready in 60 s");
  }

  /** Stops it (SIGTERM drains; SIGKILL is a crash). */
  async stop(signal = "SIGTERM") {
    if (!this.process) return;
    const exited = new Promise((r) => this.process.once("exit", r));
    this.process.kill(signal);
    await exited;
    this.process = null;
  }

  /** Stops it and removes its data. */
  async remove() {
    await this.stop();
    rmSync(this.data, { recursive: true, force: true });
  }
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
}
