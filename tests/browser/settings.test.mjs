// The console's settings screens end to end in headless Chromium, against the real gateway
// binary: a member's notifications and the webhook's events, the coach's persona, quiet hours
// and business hours, and the Activity screen (a dead letter retried, the audit log). Each
// change is made in the browser and read back through the API.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Gateway, launchBrowser, consoleKit } from "./harness.mjs";

const gw = await Gateway.create("settings", { GATEWAY__HTTP__ALLOW_PRIVATE_WEBHOOKS: "true" });
const BASE = gw.base;
const SHOTS = process.env.SCREENSHOTS_DIR || join(gw.data, "screenshots");

let browser;
let receiver;
let refused = 0;
const { api, logIn, shot, withConsole, postWhatsApp } = consoleKit(BASE, SHOTS, () => browser);

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The Graph API's sends; a recipient it refuses for good (error 131026) for the dead letter.
  receiver = createServer((req, res) => {
    const parts = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", () => {
      if (Buffer.concat(parts).toString("utf8").includes("FAIL-FOR-GOOD")) {
        refused += 1;
        const error = { message: "(#131026) Message undeliverable", type: "OAuthException", code: 131026, fbtrace_id: "AbC" };
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ messaging_product: "whatsapp", messages: [{ id: `wamid.out.${Date.now()}` }] }));
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  gw.env.GATEWAY__PROVIDERS__WHATSAPP__API_BASE_URL = `http://127.0.0.1:${receiver.address().port}/v21.0`;
  await gw.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (receiver) receiver.close();
  await gw.remove();
});

test("a member chooses the webhook's events and their own notifications in the console", async () => {
  const email = `notify-${gw.port}@example.com`;
  const password = "copper-Lagoon-whistle-35";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Notify coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  await withConsole("notifications", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=channels]").click();
    const hook = page.locator("form", { has: page.locator("h2", { hasText: "Webhook" }) });
    await hook.locator("table.deliveries td", { hasText: "No deliveries yet." }).waitFor();
    // A new webhook takes handoffs unless told otherwise; here every message too.
    assert.equal(await hook.locator("input[value='handoff.requested']").isChecked(), true);
    await hook.locator("input[type=url]").fill(`http://127.0.0.1:${receiver.address().port}/hooks/events`);
    await hook.locator("input[value='message.created']").check();
    await hook.locator("button[type=submit]").click();
    await hook.locator(".secret", { hasText: "whsec_" }).waitFor();
    const shown = await hook.locator(".secret").innerText();
    let set = (await api("GET", "/v1/tenant/notify", token)).body;
    assert.deepEqual(set.events, ["handoff.requested", "message.created"]);
    // Only the events change on the same address: the secret stays.
    await hook.locator("input[value='handoff.requested']").uncheck();
    await hook.locator("button[type=submit]").click();
    await page.locator("#toast:not([hidden])", { hasText: "Saved" }).waitFor();
    set = (await api("GET", "/v1/tenant/notify", token)).body;
    assert.deepEqual(set.events, ["message.created"]);
    assert.equal(await hook.locator(".secret").innerText(), shown);

    // E-mail on handoff is on until the member turns it off.
    const prefs = page.locator(".card.prefs");
    const mail = prefs.locator("label.check", { hasText: "E-mail me" }).locator("input");
    assert.equal(await mail.isChecked(), true);
    await mail.uncheck();
    let now = null;
    for (let i = 0; i < 50; i++) {
      now = (await api("GET", "/v1/me/notifications", token)).body;
      if (!now.email) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(now, { email: false });
    await shot(page, "notifications");
  });
});

test("a creator sets the coach's persona, quiet hours and business hours in the console", async () => {
  const email = `coach-${gw.port}@example.com`;
  const password = "saffron-Delta-meadow-71";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Settings coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  await withConsole("coach-settings", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=coach]").click();
    const form = page.locator("form.coach-settings");
    await form.locator("input[name=coach_name]").fill("Luz");
    await form.locator("select[name=language]").selectOption("es");
    await form.locator("input[name=time_zone]").fill("Europe/Madrid");
    await form.locator("input[name=quiet_start]").fill("22:00");
    await form.locator("input[name=quiet_end]").fill("07:30");
    await form.locator("input[name=open_mon]").check();
    await form.locator("input[name=open_fri]").check();
    await form.locator("input[name=to_fri]").fill("14:00");
    await form.locator("textarea[name=away_reply]").fill("Volvemos {back}.");
    await form.locator("input[name=retention_days]").fill("90");
    // A time zone that does not exist is refused with its field named, and nothing is stored.
    await form.locator("input[name=hours_time_zone]").fill("Mars/Olympus");
    await form.locator("button[type=submit]").click();
    await page.locator("#toast.error", { hasText: "time_zone" }).waitFor();
    assert.equal((await api("GET", "/v1/tenant", token)).body.persona.coach_name, "");
    await form.locator("input[name=hours_time_zone]").fill("Europe/Madrid");
    await form.locator("button[type=submit]").click();
    await page.locator("#toast:not([hidden])", { hasText: "Saved" }).waitFor();
    const tenant = (await api("GET", "/v1/tenant", token)).body;
    assert.equal(tenant.persona.coach_name, "Luz");
    assert.equal(tenant.persona.language, "es");
    assert.equal(tenant.outreach.time_zone, "Europe/Madrid");
    assert.deepEqual(tenant.outreach.quiet_hours, { start: "22:00", end: "07:30" });
    assert.deepEqual(tenant.business_hours, {
      time_zone: "Europe/Madrid",
      open: { mon: "09:00-17:00", fri: "09:00-14:00" },
      away_reply: "Volvemos {back}.",
    });
    assert.equal(tenant.retention_days, 90);
    await shot(page, "coach-settings");
  });
});

test("an admin retries a failed delivery and reads the audit log", async () => {
  const email = `activity-${gw.port}@example.com`;
  const password = "harbor-Violet-candle-58";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Activity coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const appSecret = "activity-app-secret";
  const channel = await api("POST", "/v1/channels", token, {
    kind: "whatsapp",
    name: "Refused",
    config: { phone_number_id: "106540352242925", access_token: "EAAG-activity", app_secret: appSecret, verify_token: "verify-activity" },
  });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  const wa = { id: channel.body.id, phone_number_id: "106540352242925", app_secret: appSecret };
  const hello = { from: "4915112345555", id: "wamid.activity.1", timestamp: String(Math.floor(Date.now() / 1000)), type: "text", text: { body: "Hello?" } };
  assert.equal(await postWhatsApp(wa, [hello], { name: "Noor", wa_id: "4915112345555" }), 200);
  let convs;
  for (let i = 0; i < 100; i++) {
    convs = await api("GET", "/v1/conversations", token);
    if (convs.body.items.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const id = convs.body.items[0].id;
  // A member answers; Graph refuses the number for good: a dead letter at once.
  const sent = await api("POST", `/v1/conversations/${id}/messages`, token, { text: "FAIL-FOR-GOOD: are you there?" });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  let dead = [];
  for (let i = 0; i < 200 && !dead.length; i++) {
    dead = (await api("GET", "/v1/outbox?state=dead", token)).body;
    if (!dead.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(dead.length, 1, "one dead letter");
  const before = refused;

  await withConsole("activity", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=activity]").click();
    const row = page.locator(`tr[data-outbox="${dead[0].id}"]`);
    await row.locator("td.error", { hasText: "131026" }).waitFor();
    await shot(page, "activity");
    await row.locator("button.retry").click();
    await page.locator("#toast:not([hidden])", { hasText: "Sent again" }).waitFor();
    // The retry reached Graph again, and is in the audit log, on the page and through the API.
    for (let i = 0; i < 100 && refused === before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(refused, before + 1, "the retry was sent");
    await page.locator("table.audit tr[data-action='outbox.retry']").waitFor();
    const audit = (await api("GET", "/v1/audit-log", token)).body.map((a) => a.action);
    assert.ok(audit.includes("outbox.retry"), JSON.stringify(audit));
  });
});
