// The console's settings screens end to end in headless Chromium, against the real gateway
// binary: a member's notifications and the webhook's events, the coach's persona, quiet hours
// and business hours, the Activity screen (a dead letter retried, the audit log), and a
// channel whose token expired (its health shown, fixed in the channel's edit form with a
// fallback template), a widget visitor's image seen inline in the console, and the widget's
// pre-chat form and rating turned on in the designer, filled in and given by a visitor. Each
// change is made in the browser and read back through the API.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { deflateSync, crc32 } from "node:zlib";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Gateway, launchBrowser, consoleKit } from "./harness.mjs";

const gw = await Gateway.create("settings", { GATEWAY__HTTP__ALLOW_PRIVATE_WEBHOOKS: "true" });
const BASE = gw.base;
const SHOTS = process.env.SCREENSHOTS_DIR || join(gw.data, "screenshots");

let browser;
let receiver;
let refused = 0;
let expired = 0;
const { api, logIn, shot, withConsole, postWhatsApp } = consoleKit(BASE, SHOTS, () => browser);

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The Graph API's sends; a recipient it refuses for good (error 131026) for the dead letter.
  receiver = createServer((req, res) => {
    const parts = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", () => {
      if (req.headers.authorization === "Bearer EAAG-expired") {
        expired += 1;
        const error = { message: "Error validating access token: Session has expired.", type: "OAuthException", code: 190, fbtrace_id: "AbD" };
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error }));
        return;
      }
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

test("an admin sees a channel's expired token and fixes it in the console", async () => {
  const email = `health-${gw.port}@example.com`;
  const password = "marble-Orchid-lantern-64";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Health coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const appSecret = "health-app-secret";
  const created = await api("POST", "/v1/channels", token, {
    kind: "whatsapp",
    name: "Main",
    config: { phone_number_id: "106540352242926", access_token: "EAAG-expired", app_secret: appSecret, verify_token: "verify-health" },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const wa = { id, phone_number_id: "106540352242926", app_secret: appSecret };
  const hello = { from: "4915112346666", id: "wamid.health.1", timestamp: String(Math.floor(Date.now() / 1000)), type: "text", text: { body: "Hi" } };
  assert.equal(await postWhatsApp(wa, [hello], { name: "Ivo", wa_id: "4915112346666" }), 200);
  let convs;
  for (let i = 0; i < 100; i++) {
    convs = await api("GET", "/v1/conversations", token);
    if (convs.body.items.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const sent = await api("POST", `/v1/conversations/${convs.body.items[0].id}/messages`, token, { text: "Welcome, Ivo!" });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  let health = [];
  for (let i = 0; i < 200; i++) {
    health = (await api("GET", "/v1/channels/health", token)).body;
    if (health[0]?.status === "failing") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(health[0]?.status, "failing", JSON.stringify(health));
  assert.ok(expired >= 1, "Graph refused the expired token");

  await withConsole("channel-health", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=channels] .alert-dot", { hasText: "1" }).waitFor();
    await page.locator("nav a[data-route=channels]").click();
    const alert = page.locator(`.alert.failing[data-health="${id}"]`);
    await alert.locator("code", { hasText: "190: Error validating access token" }).waitFor();
    await page.locator(`li[data-channel="${id}"] .badge.health.failing`).waitFor();
    await shot(page, "channel-health");
    await alert.locator("button", { hasText: "Fix the channel" }).click();
    const form = page.locator(`form[data-edit="${id}"]`);
    await form.locator("input[name=name]").fill("Main number");
    // Secrets are shown masked; only the token is replaced, the others are kept.
    assert.equal(await form.locator("input[name=app_secret]").inputValue(), "");
    assert.equal(await form.locator("input[name=app_secret]").getAttribute("placeholder"), "unchanged (type to replace)");
    await form.locator("input[name=access_token]").fill("EAAG-fresh");
    await form.locator("input[name=fallback_name]").fill("check_in");
    await form.locator("input[name=fallback_language]").fill("es");
    await form.locator("button[type=submit]").click();
    await page.locator("#toast:not([hidden])", { hasText: "Saved" }).waitFor();
    const channel = (await api("GET", `/v1/channels/${id}`, token)).body;
    assert.equal(channel.name, "Main number");
    assert.equal(channel.enabled, true);
    assert.deepEqual(channel.config.fallback_template, { name: "check_in", language: "es" });
    assert.equal(channel.config.access_token, "********");

    // The failed messages (the welcome, and the coach's answer to "Hi" when it came before
    // the fix) are sent again with the new token; the app secret still verifies.
    const dead = (await api("GET", "/v1/outbox?state=dead", token)).body;
    assert.ok(dead.length >= 1, JSON.stringify(dead));
    for (const d of dead) assert.equal((await api("POST", `/v1/outbox/${d.id}/retry`, token)).status, 200);
    for (let i = 0; i < 200; i++) {
      health = (await api("GET", "/v1/channels/health", token)).body;
      if (health[0]?.status === "ok") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(health[0]?.status, "ok", JSON.stringify(health));
    const again = { ...hello, id: "wamid.health.2", text: { body: "Thanks" } };
    assert.equal(await postWhatsApp(wa, [again], { name: "Ivo", wa_id: "4915112346666" }), 200);
    await page.reload();
    await page.locator(`li[data-channel="${id}"] .badge.health.ok`).waitFor();
    assert.equal(await page.locator(".alert.failing").count(), 0);
    assert.equal(await page.locator("nav .alert-dot").count(), 0);
  });
});

/** A real PNG of `size` x `size` pixels in one colour (zlib-deflated rows, CRCs computed). */
function png(size, [r, g, b]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3).map((_, i) => [r, g, b][i % 3])]);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: size }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", pixels), chunk("IEND", Buffer.alloc(0))]);
}

test("a widget visitor sees the team is away, sends an image, and the creator sees it inline", async () => {
  const email = `upload-${gw.port}@example.com`;
  const password = "pebble-Sorrel-harvest-42";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Upload coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const created = await api("POST", "/v1/channels", token, { kind: "web_widget", name: "Site", config: { title: "Upload coach" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const W = "[data-coach-widget]";
  // No day open: the widget says the team is away.
  const hours = await api("PATCH", "/v1/tenant", token, { business_hours: { time_zone: "UTC", open: {} } });
  assert.equal(hours.status, 200, JSON.stringify(hours.body));
  const context = await browser.newContext();
  const visitor = await context.newPage();
  try {
    // The coachee app is the widget on the gateway's own origin.
    await visitor.goto(`${BASE}/c/${id}/`);
    await visitor.locator(`${W} .at`).waitFor();
    await visitor.locator(`${W} .aw`, { hasText: "The team is away" }).waitFor();
    await visitor.waitForFunction((key) => JSON.parse(localStorage.getItem(key) || "{}").token, `coach-widget:${id}`);
    await visitor.locator(`${W} input[type=file]`).setInputFiles({ name: "breakfast.png", mimeType: "image/png", buffer: png(48, [230, 120, 20]) });
    const preview = visitor.locator(`${W} .g.in.up[data-seq] img`);
    await preview.waitFor();
    await visitor.waitForFunction((el) => el.complete && el.naturalWidth === 48, await preview.elementHandle());
    // Something that is not an image by its bytes is refused, and the widget says so.
    await visitor.locator(`${W} input[type=file]`).setInputFiles({ name: "cat.png", mimeType: "image/png", buffer: Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>") });
    await visitor.locator(`${W} .g.in.up.er`).waitFor();
    await shot(visitor, "widget-upload");
  } finally {
    await context.close();
  }
  const convs = (await api("GET", "/v1/conversations", token)).body.items;
  assert.equal(convs.length, 1);
  const msgs = (await api("GET", `/v1/conversations/${convs[0].id}/messages`, token)).body.items;
  assert.equal(msgs.length, 1, JSON.stringify(msgs));
  assert.equal(msgs[0].content.file.mime, "image/png");

  await withConsole("upload-inline", async (page) => {
    await logIn(page, { email, password });
    await page.goto(`${BASE}/console#/inbox/${convs[0].id}`);
    const img = page.locator(`li[data-message="${msgs[0].id}"] .media[data-kind=image] img`);
    await img.waitFor();
    await page.waitForFunction((el) => el.complete && el.naturalWidth === 48, await img.elementHandle());
    await shot(page, "upload-inline");
  });
});

test("the designer turns on the pre-chat form and ratings; a visitor fills it in and rates the resolved conversation", async () => {
  const email = `prechat-${gw.port}@example.com`;
  const password = "pebble-Sorrel-harvest-42";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Prechat coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const created = await api("POST", "/v1/channels", token, { kind: "web_widget", name: "Site", config: { title: "Prechat coach" } });
  const id = created.body.id;
  const consent = "I agree to the [privacy policy](https://example.com/privacy)";
  await withConsole("prechat-designer", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=widget]").click();
    const form = page.locator("form[aria-label='Widget designer']");
    await form.locator("input[name=csat]").check();
    await form.locator("input[name=prechat]").check();
    await form.locator("select[name=prechat-email]").selectOption("optional");
    await form.locator("textarea[name=prechat-message]").fill("Tell us who you are");
    await form.locator("input[name=prechat-consent]").fill(consent);
    await form.locator("button[type=submit]").click();
    await page.locator("#toast:not([hidden])", { hasText: "Saved" }).waitFor();
    await shot(page, "designer-prechat");
  });
  const config = (await api("GET", "/v1/channels", token)).body.find((c) => c.id === id).config;
  assert.equal(config.csat, true);
  assert.deepEqual(config.prechat, { message: "Tell us who you are", name: "required", email: "optional", consent });

  const W = "[data-coach-widget]";
  const context = await browser.newContext();
  const visitor = await context.newPage();
  try {
    await visitor.goto(`${BASE}/c/${id}/`);
    // The form comes before the composer; the consent box must be ticked.
    const pf = visitor.locator(`${W} form.pf`);
    await pf.locator("text=Tell us who you are").waitFor();
    await shot(visitor, "widget-prechat");
    assert.equal(await visitor.locator(`${W} textarea`).isVisible(), false, "the composer shows before the form");
    await pf.locator("input[name=name]").fill("Lucía Gómez");
    await pf.locator("button[type=submit]").click();
    assert.equal(await pf.locator("input[name=consent]").evaluate((c) => c.validity.valueMissing), true);
    await pf.locator("input[name=consent]").check();
    assert.equal(await pf.locator("a[href='https://example.com/privacy']").count(), 1, "the consent's link");
    await pf.locator("button[type=submit]").click();
    await visitor.locator(`${W} textarea`).waitFor();
    await visitor.locator(`${W} textarea`).fill("Hello, I would like some help");
    await visitor.locator(`${W} textarea`).press("Enter");
    await visitor.locator(`${W} .g.in[data-seq]`, { hasText: "Hello, I would like some help" }).waitFor();
    const contact = (await api("GET", "/v1/contacts", token)).body.items[0];
    assert.equal(contact.display_name, "Lucía Gómez");
    assert.equal(contact.attributes.chat_consent_text, consent);
    assert.ok(contact.attributes.chat_consent_at);
    assert.equal(contact.consent_at, null, "the chat's terms are no consent to check-ins");
    // Resolved by the team: the visitor rates it, with a comment; it stays resolved.
    const conv = (await api("GET", "/v1/conversations", token)).body.items[0];
    assert.equal((await api("POST", `/v1/conversations/${conv.id}/resolve`, token)).status, 200);
    const faces = visitor.locator(`${W} .rt button[aria-label='4 out of 5']`);
    await faces.waitFor({ timeout: 30_000 });
    await faces.click();
    await visitor.locator(`${W} .rt .n`, { hasText: "Thank you for your rating" }).waitFor();
    await visitor.locator(`${W} .rt input`).fill("Quick and kind");
    await visitor.locator(`${W} .rt form button[type=submit]`).click();
    await visitor.locator(`${W} .rt input`).waitFor({ state: "hidden" });
    await shot(visitor, "widget-rating");
    // After a reload the rating shows as given.
    await visitor.reload();
    await visitor.locator(`${W} .rt button[aria-label='4 out of 5'][aria-pressed=true]`).waitFor();
  } finally {
    await context.close();
  }
  assert.equal((await api("GET", "/v1/conversations", token)).body.items[0].status, "resolved");
  const ratings = (await api("GET", "/v1/analytics", token)).body.ratings;
  assert.equal(ratings.responses, 1, JSON.stringify(ratings));
  assert.equal(ratings.average, 4);
  assert.equal(ratings.recent[0].comment, "Quick and kind");
  await withConsole("ratings-chart", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=analytics]").click();
    await page.locator("[data-chart=ratings]", { hasText: "Quick and kind" }).waitFor();
    await shot(page, "analytics-ratings");
  });
});
