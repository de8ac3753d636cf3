// A real gateway process for browser tests: the binary `cargo test` built, on embedded defaults
// (SQLite, qdrant-edge, the real models) in a fresh data directory, on a port the system hands
// out (bound on port 0 and released: no guessing, no clash with a port in use).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac } from "node:crypto";
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

/** The console helpers of one gateway at `base`: the API, logging in, screenshots into `shots`,
 * and a console page that keeps a screenshot and the page's errors when a test fails
 * (`browser()` gives the launched browser). */
export function consoleKit(base, shots, browser) {
  async function api(method, path, token, body) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${base}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
    return { status: r.status, body: r.status === 204 ? null : await r.json() };
  }

  async function logIn(page, { email, password }) {
    await page.goto(`${base}/console`);
    await page.locator("input[name=email]").fill(email);
    await page.locator("input[name=password]").fill(password);
    await page.locator("form.login button[type=submit]").click();
    await page.locator("#live.on").waitFor({ timeout: 30_000 });
  }

  async function shot(page, name) {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
  }

  /** Runs `body` with a console page; on failure, keeps a screenshot and the page's errors. */
  async function withConsole(name, body) {
    const context = await browser().newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    try {
      await body(page, context);
    } catch (e) {
      await shot(page, `failed-${name}`).catch(() => {});
      e.message += `\npage errors: ${JSON.stringify(errors)}`;
      throw e;
    } finally {
      await context.close();
    }
  }

  /** POSTs Meta's documented webhook shape carrying `messages` from `who` to a WhatsApp
   * channel (`{id, phone_number_id, app_secret}`), signed with its app secret as Meta signs it;
   * the HTTP status. */
  async function postWhatsApp(channel, messages, who) {
    const raw = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{ id: "WABA", changes: [{ field: "messages", value: {
        messaging_product: "whatsapp",
        metadata: { display_phone_number: "15550001111", phone_number_id: channel.phone_number_id },
        contacts: [{ profile: { name: who.name }, wa_id: who.wa_id }],
        messages,
      } }] }],
    });
    const signature = `sha256=${createHmac("sha256", channel.app_secret).update(raw).digest("hex")}`;
    const r = await fetch(`${base}/webhooks/whatsapp/${channel.id}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": signature },
      body: raw,
    });
    return r.status;
  }

  return { api, logIn, shot, withConsole, postWhatsApp };
}
