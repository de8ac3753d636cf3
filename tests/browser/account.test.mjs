// Account e-mails in headless Chromium, against the real gateway binary with a local SMTP sink
// as its relay (so new accounts confirm their address): a creator registers, is told at login
// to confirm, asks for the link again, opens it from the mail and logs in; then forgets the
// password, asks for a reset link, opens it and logs in with the new password.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Gateway, launchBrowser } from "./harness.mjs";

/** Mail bodies received by the sink (just enough of RFC 5321 for a client to deliver). */
const mails = [];
const sink = createServer((socket) => {
  let data = false;
  let body = "";
  let buffer = "";
  socket.write("220 sink ready\r\n");
  socket.on("data", (chunk) => {
    buffer += chunk.toString("utf8");
    let cut;
    while ((cut = buffer.indexOf("\r\n")) >= 0) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (data) {
        if (line === ".") {
          data = false;
          mails.push(body);
          body = "";
          socket.write("250 queued\r\n");
        } else body += `${line}\n`;
        continue;
      }
      const verb = line.split(" ")[0].toUpperCase();
      if (verb === "DATA") {
        data = true;
        socket.write("354 end with .\r\n");
      } else if (verb === "QUIT") socket.end("221 bye\r\n");
      else socket.write("250 ok\r\n");
    }
  });
  socket.on("error", () => {});
});
await new Promise((r) => sink.listen(0, "127.0.0.1", r));

const gw = await Gateway.create("account", {
  GATEWAY__SMTP__URL: `smtp://127.0.0.1:${sink.address().port}`,
  GATEWAY__SMTP__FROM: "Coach <no-reply@coach.example>",
});
const BASE = gw.base;
let browser;

before(async () => {
  await gw.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  sink.close();
  await gw.remove();
});

/** The link in the next mail to `to` that contains `part` (waits for it). */
async function linkIn(to, part, after) {
  for (let i = 0; i < 100; i++) {
    for (const raw of mails.slice(after)) {
      const mail = raw.replace(/=\n/g, "").replace(/=3D/g, "=");
      if (!mail.includes(`To: ${to}`)) continue;
      const link = mail.split(/\s+/).find((w) => w.startsWith("http") && w.includes(part));
      if (link) return link;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail to ${to} with ${part}: ${JSON.stringify(mails)}`);
}

async function logIn(page, email, password) {
  await page.goto(`${BASE}/console`);
  await page.locator("input[name=email]").fill(email);
  await page.locator("input[name=password]").fill(password);
  await page.locator("form.login button[type=submit]").click();
}

test("a new creator confirms the address, then resets a forgotten password by e-mail", async () => {
  const email = `creator-${gw.port}@example.com`;
  const password = "violet-quarry-Tundra-88";
  const reg = await fetch(`${BASE}/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password, tenant_name: "Mail coach" }),
  });
  assert.equal(reg.status, 202, "registering asks to confirm the address");
  const first = await linkIn(email, "#/verify-email?token=", 0);
  assert.ok(first.startsWith(`${BASE}/console#/verify-email?token=ev_`), first);

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    // Not confirmed yet: the console says so and offers the link again.
    await logIn(page, email, password);
    await page.locator("form.login [role=alert]", { hasText: "Confirm your e-mail address" }).waitFor();
    const count = mails.length;
    await page.locator("form.login button", { hasText: "Send the link again" }).click();
    await page.locator("form.login [role=alert]", { hasText: "A new link is on its way" }).waitFor();
    const link = await linkIn(email, "#/verify-email?token=", count);
    assert.notEqual(link, first, "a new link");

    // Opening the link confirms the address; logging in works.
    await page.goto(link);
    await page.locator("form.login [role=alert]", { hasText: "confirmed" }).waitFor();
    assert.ok(!page.url().includes("token="), "the token leaves the address bar");
    await page.locator("input[name=email]").fill(email);
    await page.locator("input[name=password]").fill(password);
    await page.locator("form.login button[type=submit]").click();
    await page.locator("#live.on").waitFor({ timeout: 30_000 });
    await page.locator("header button", { hasText: "Log out" }).click();

    // Forgotten password: a reset link by e-mail, a new password, a login with it.
    await page.locator("form.login button", { hasText: "Forgot your password?" }).click();
    await page.locator("input[name=email]").fill(email);
    const before = mails.length;
    await page.locator("form.login button[type=submit]").click();
    await page.locator("form.login [role=alert]", { hasText: "a link to choose a new password" }).waitFor();
    const reset = await linkIn(email, "#/reset-password?token=", before);
    await page.goto(reset);
    const fresh = "cobalt-Meadow-tiger-27";
    await page.locator("input[name=new-password]").fill(fresh);
    await page.locator("form.login button[type=submit]").click();
    await page.locator("form.login [role=alert]", { hasText: "Your password is changed" }).waitFor();
    await page.locator("input[name=email]").fill(email);
    await page.locator("input[name=password]").fill(fresh);
    await page.locator("form.login button[type=submit]").click();
    await page.locator("#live.on").waitFor({ timeout: 30_000 });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
