// The creator console end to end in headless Chromium, against the real gateway binary with
// the real models: log in as the demo tenant, upload a PDF and watch it become ready, test a
// question, see a widget visitor ask for a person arrive live, take over, reply (the visitor sees
// it), hand back; the creator's webhook is verified by a local receiver that checks the
// signature; a second tenant's console shows none of it. Screenshots go to SCREENSHOTS_DIR.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { deflateSync } from "node:zlib";
import { mkdirSync, readFileSync, existsSync, mkdtempSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gateway, launchBrowser, consoleKit } from "./harness.mjs";

const gw = await Gateway.create("console", { GATEWAY__HTTP__ALLOW_PRIVATE_WEBHOOKS: "true" });
const BASE = gw.base;
const W = "[data-coach-widget]";
const SHOTS = process.env.SCREENSHOTS_DIR || join(gw.data, "screenshots");

let browser;
let receiver;
const received = [];
let secret = null;
const { api, logIn, shot, withConsole, postWhatsApp } = consoleKit(BASE, SHOTS, () => browser);

/** A one-page PDF with these lines of text (Helvetica), with a correct cross-reference table. */
function pdf(lines) {
  const esc = (s) => s.replace(/[\\()]/g, (c) => `\\${c}`);
  const text = `BT /F1 12 Tf 72 720 Td 16 TL ${lines.map((l) => `(${esc(l)}) Tj T*`).join(" ")} ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${Buffer.byteLength(text)} >>\nstream\n${text}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(Buffer.byteLength(out));
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out);
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  out += offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("");
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

/** Checks the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature: v1,<base64>`) over the raw body, as a creator's server would, and the
 * deprecated `Coach-Signature: t=..,v1=..` sent beside it. */
function verified(headers, raw) {
  if (!secret) return false;
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  if (!id || !ts || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const want = createHmac("sha256", key).update(`${id}.${ts}.`).update(raw).digest();
  const standard = String(headers["webhook-signature"] || "")
    .split(" ")
    .map((s) => s.split(","))
    .some(([v, sig]) => v === "v1" && sig && Buffer.from(sig, "base64").length === want.length && timingSafeEqual(Buffer.from(sig, "base64"), want));
  const parts = Object.fromEntries(String(headers["coach-signature"] || "").split(",").map((p) => p.split("=")));
  if (!parts.t || !parts.v1) return false;
  const old = createHmac("sha256", secret).update(`${parts.t}.`).update(raw).digest();
  const got = Buffer.from(parts.v1, "hex");
  return standard && got.length === old.length && timingSafeEqual(got, old);
}

async function demoLogin() {
  const file = join(gw.data, "demo.json");
  for (let i = 0; i < 600 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
  return { email: "demo@coach.example", password: JSON.parse(readFileSync(file, "utf8")).console_password };
}

/** A PNG of `side` pixels square in one colour (zlib from node; CRC-32 as PNG defines it). */
function png(side, [r, g, b]) {
  const crc = (buf) => {
    let c = ~0;
    for (const byte of buf) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(side).fill([r, g, b]).flat())]);
  const raw = Buffer.concat(Array(side).fill(row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}
const PICTURE = png(24, [46, 158, 68]);
/** A voice note as WhatsApp sends them: speech from espeak-ng, Ogg/Opus. */
function voiceNote(text) {
  const dir = mkdtempSync(join(tmpdir(), "coach-note-"));
  execFileSync("espeak-ng", ["-v", "en", "-s", "150", "-w", join(dir, "n.wav"), text]);
  execFileSync("opusenc", ["--quiet", "--bitrate", "24", join(dir, "n.wav"), join(dir, "n.ogg")]);
  return readFileSync(join(dir, "n.ogg"));
}
const NOTE = voiceNote("Hi coach. My evenings are busy and I go to bed late. How many hours before bed should I stop drinking coffee?");

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  receiver = createServer((req, res) => {
    // The Graph API, as far as these tests use it: a picture's two media steps, and sends.
    const port = receiver.address().port;
    if (req.method === "GET" && req.url === "/v21.0/MEDIAPNG1") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ messaging_product: "whatsapp",
        url: `http://127.0.0.1:${port}/cdn/MEDIAPNG1`, mime_type: "image/png", file_size: PICTURE.length, id: "MEDIAPNG1" }));
      return;
    }
    if (req.method === "GET" && req.url === "/cdn/MEDIAPNG1") {
      res.writeHead(200, { "content-type": "image/png" }).end(PICTURE);
      return;
    }
    if (req.method === "GET" && req.url === "/v21.0/MEDIAOGG1") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ messaging_product: "whatsapp",
        url: `http://127.0.0.1:${port}/cdn/MEDIAOGG1`, mime_type: "audio/ogg; codecs=opus", file_size: NOTE.length, id: "MEDIAOGG1" }));
      return;
    }
    if (req.method === "GET" && req.url === "/cdn/MEDIAOGG1") {
      res.writeHead(200, { "content-type": "audio/ogg" }).end(NOTE);
      return;
    }
    if (req.url.startsWith("/v21.0/")) {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ messaging_product: "whatsapp", messages: [{ id: `wamid.out.${Date.now()}` }] }));
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const ok = verified(req.headers, raw);
      received.push({ ok, body: JSON.parse(raw.toString("utf8")), id: req.headers["webhook-id"] });
      res.writeHead(ok ? 200 : 400).end();
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

test("a creator indexes a PDF, takes over a conversation live, replies and hands back", () =>
  withConsole("journey", async (console_) => {
  await logIn(console_, await demoLogin());
  await shot(console_, "inbox-empty");

  // The creator's webhook, set in the console; the secret is shown once.
  await console_.locator("nav a[data-route=channels]").click();
  const notify = console_.locator("form", { has: console_.locator("h2", { hasText: "Webhook" }) });
  await notify.locator("input[type=url]").fill(`http://127.0.0.1:${receiver.address().port}/hooks/coach`);
  await notify.locator("button[type=submit]").click();
  await notify.locator(".secret", { hasText: "whsec_" }).waitFor();
  secret = (await notify.locator(".secret").innerText()).match(/whsec_[\w+/=-]+/)[0];
  await shot(console_, "channels");

  // Knowledge: upload a PDF (drag and drop's file input), watch it become ready, test a question.
  await console_.locator("nav a[data-route=knowledge]").click();
  await console_.locator("#upload-input").setInputFiles({
    name: "breathing.pdf",
    mimeType: "application/pdf",
    buffer: pdf([
      "Box breathing for calm",
      "Breathe in for four counts, hold for four counts, breathe out for four counts,",
      "and hold again for four counts. Repeat the box breathing cycle for five minutes",
      "before a stressful meeting to calm the nervous system.",
    ]),
  });
  const row = console_.locator("tr[data-document]", { hasText: "breathing" });
  await row.waitFor();
  await console_.locator("tr[data-document][data-status=ready]", { hasText: "breathing" }).waitFor({ timeout: 240_000 });
  await console_.locator("form[role=search] input").fill("How long should I do box breathing?");
  await console_.locator("form[role=search] button").click();
  await console_.locator(".passage", { hasText: "box breathing" }).first().waitFor({ timeout: 60_000 });
  await shot(console_, "knowledge");

  // A visitor on the demo page asks for a person.
  await console_.locator("nav a[data-route=inbox]").click();
  const visitorContext = await browser.newContext();
  const visitor = await visitorContext.newPage();
  await visitor.goto(`${BASE}/demo`);
  await visitor.locator(`${W} .l`).waitFor({ timeout: 60_000 });
  await visitor.locator(`${W} .l`).click();
  await visitor.locator(`${W} textarea`).fill("Can I talk to a human?");
  await visitor.locator(`${W} textarea`).press("Enter");

  // It arrives live, waiting for a person, first in the list, with a notice.
  const waiting = console_.locator("li.conv[data-status=waiting]");
  await waiting.waitFor({ timeout: 60_000 });
  await console_.locator("#toast:not([hidden])").waitFor();
  assert.equal(await waiting.locator(".unread").innerText(), "1", "the unread count");
  await shot(console_, "inbox");

  // The creator's server got one signed notice.
  for (let i = 0; i < 100 && !received.length; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(received.length, 1, "one webhook notice");
  assert.ok(received[0].ok, "the notice's signature verifies");
  assert.equal(received[0].body.type, "handoff.requested");
  assert.equal(received[0].body.data.reason, "asked_for_human");
  assert.equal(received[0].body.data.question, "Can I talk to a human?");

  // Take over, reply, and the visitor sees the reply.
  await waiting.locator("a").click();
  const pane = console_.locator(".conv-pane");
  await pane.locator(".msg.in", { hasText: "Can I talk to a human?" }).waitFor();
  await pane.locator("button.take").click();
  await console_.locator(".conv-pane[data-status=human]").waitFor();
  await pane.locator(".reply textarea").fill("Hi, this is Ana from the team. How can I help?");
  await pane.locator(".reply textarea").press("Enter");
  await pane.locator(".msg.out", { hasText: "this is Ana" }).waitFor();
  await visitor.locator(`${W} .g.out[data-seq]`, { hasText: "this is Ana" }).waitFor({ timeout: 30_000 });
  await shot(console_, "conversation");

  // The visitor answers; it shows up live in the open conversation.
  await visitor.locator(`${W} textarea`).fill("I feel stressed before meetings");
  await visitor.locator(`${W} textarea`).press("Enter");
  await pane.locator(".msg.in", { hasText: "stressed before meetings" }).waitFor({ timeout: 30_000 });
  // A member has it: the coach stays silent.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await visitor.locator(`${W} .g.out[data-seq]`).count(), 2, "the coach talked over the creator");

  // Hand back: the coach answers the next message again.
  await pane.locator("button.back").click();
  await console_.locator(".conv-pane[data-status=open]").waitFor();
  await visitor.locator(`${W} textarea`).fill("What is box breathing?");
  await visitor.locator(`${W} textarea`).press("Enter");
  await visitor.locator(`${W} .g.out[data-seq]`).nth(2).waitFor({ timeout: 180_000 });

  // Analytics: charts of what just happened.
  await console_.locator("nav a[data-route=analytics]").click();
  await console_.locator("[data-chart=messages] svg rect").first().waitFor();
  await console_.locator("[data-chart=usage] svg rect").first().waitFor();
  await console_.locator("[data-chart=unanswered] .questions li", { hasText: "talk to a human" }).waitFor();
  await shot(console_, "analytics");

  for (const [route, ready] of [["widget", ".pv-head"], ["programs", ".programs li"], ["team", "tbody tr"]]) {
    await console_.locator(`nav a[data-route=${route}]`).click();
    await console_.locator(`main[data-view=${route}] ${ready}`).first().waitFor();
    await shot(console_, route);
  }
  // Team: an invitation is listed as pending until it is revoked.
  await console_.locator("nav a[data-route=team]").click();
  await console_.locator("main[data-view=team] input[type=email]").fill(`coach-${gw.port}@example.com`);
  await console_.locator("main[data-view=team] form button[type=submit]").first().click();
  const pending = console_.locator("table[data-invites] tbody tr", { hasText: `coach-${gw.port}@example.com` });
  await pending.waitFor();
  await pending.locator("button.danger").click();
  await pending.waitFor({ state: "detached" });
  // The widget designer previews what is typed, and saves it.
  await console_.locator("nav a[data-route=widget]").click();
  const title = console_.locator("form[aria-label='Widget designer'] input").first();
  await title.fill("Ask Ana");
  assert.equal(await console_.locator(".pv-head").innerText(), "Ask Ana");
  await console_.locator("form[aria-label='Widget designer'] textarea[name=starters]").fill("What is box breathing?\nHow do I sleep better?");
  await console_.locator("form[aria-label='Widget designer'] button[type=submit]").click();
  await console_.locator("#toast:not([hidden])", { hasText: "Saved" }).waitFor();
  const demoToken = (await api("POST", "/v1/auth/login", null, await demoLogin())).body.access_token;
  const widgetChannel = (await api("GET", "/v1/channels", demoToken)).body.find((c) => c.kind === "web_widget");
  assert.deepEqual(widgetChannel.config.starters, ["What is box breathing?", "How do I sleep better?"]);
  assert.equal(widgetChannel.config.title, "Ask Ana");
  // Spanish.
  await console_.locator("header select.lang").selectOption("es");
  await console_.locator("nav a[data-route=inbox]", { hasText: "Bandeja" }).waitFor();
  await visitorContext.close();
}));

test("another tenant's console shows none of the first tenant's data", async () => {
  const email = `other-${gw.port}@example.com`;
  const password = "violet-quarry-Tundra-88";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Other coach" });
  assert.equal(reg.status, 201);
  const other = await browser.newContext();
  const page = await other.newPage();
  await logIn(page, { email, password });
  await page.locator(".conv-list .empty").waitFor();

  // The first tenant's visitor writes while the other console is open: nothing arrives.
  const visitorContext = await browser.newContext();
  const visitor = await visitorContext.newPage();
  await visitor.goto(`${BASE}/demo`);
  await visitor.locator(`${W} .l`).waitFor({ timeout: 60_000 });
  await visitor.locator(`${W} .l`).click();
  await visitor.locator(`${W} textarea`).fill("A private question for the demo coach");
  await visitor.locator(`${W} textarea`).press("Enter");
  await visitor.locator(`${W} .g.in[data-seq]`, { hasText: "A private question" }).waitFor();
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await page.locator("li.conv").count(), 0, "another tenant's conversation showed up");

  await page.locator("nav a[data-route=knowledge]").click();
  await page.locator("table.docs .empty").waitFor();
  assert.equal(await page.locator("tr[data-document]").count(), 0);

  // Its token cannot read the demo tenant's conversations either.
  const token = reg.body.access_token;
  const demo = await api("POST", "/v1/auth/login", null, await demoLogin());
  const theirs = await api("GET", "/v1/inbox", demo.body.access_token);
  assert.ok(theirs.body.length > 0);
  const peek = await api("GET", `/v1/conversations/${theirs.body[0].conversation.id}`, token);
  assert.equal(peek.status, 404);
  assert.equal((await api("GET", "/v1/inbox", token)).body.length, 0);
  await visitorContext.close();
  await other.close();
});

test("a long conversation opens on its newest messages and pages back on demand", async () => {
  const email = `long-${gw.port}@example.com`;
  const password = "violet-quarry-Tundra-88";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Long coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const appSecret = "long-app-secret";
  const channel = await api("POST", "/v1/channels", token, {
    kind: "whatsapp",
    name: "Long",
    config: { phone_number_id: "106540352242922", access_token: "EAAG-long", app_secret: appSecret, verify_token: "verify-long" },
  });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  const wa = { id: channel.body.id, phone_number_id: "106540352242922", app_secret: appSecret };
  const post = async (messages, who = { name: "Lena", wa_id: "4915112349999" }) => {
    assert.equal(await postWhatsApp(wa, messages, who), 200);
  };
  const message = (n) => ({ from: "4915112349999", id: `wamid.long.${n}`, timestamp: String(1_700_000_000 + n), type: "text", text: { body: `line ${n} of the story` } });
  await post([message(1)]);
  // The creator takes over, so the coach stays silent while the rest arrives in one delivery.
  const convs = await api("GET", "/v1/conversations", token);
  const id = convs.body.items[0].id;
  assert.equal((await api("POST", `/v1/conversations/${id}/takeover`, token)).status, 200);
  await post(Array.from({ length: 129 }, (_, i) => message(i + 2)));

  await withConsole("long", async (page) => {
    await logIn(page, { email, password });
    await page.goto(`${BASE}/console#/inbox/${id}`);
    await page.locator("li.msg", { hasText: "line 130 of the story" }).waitFor();
    assert.equal(await page.locator("li.msg", { hasText: "line 1 of the story" }).count(), 0, "the oldest are not loaded at first");
    const earlier = page.locator("li.earlier button");
    await earlier.click();
    await page.locator("li.msg", { hasText: "line 1 of the story" }).waitFor();
    assert.equal(await page.locator("li.earlier").count(), 0, "nothing earlier is left");
    const texts = await page.locator("li.msg .body").allTextContents();
    const lines = texts.filter((x) => x.startsWith("line ")).map((x) => Number(x.split(" ")[1]));
    assert.deepEqual(lines, Array.from({ length: 130 }, (_, i) => i + 1), "every message once, in order");

    // Search and views in the inbox: another coachee writes; each is found by their words.
    await post(
      [{ from: "4915112348888", id: "wamid.other.1", timestamp: "1700000500", type: "text", text: { body: "My knee hurts after squats" } }],
      { name: "Omar", wa_id: "4915112348888" },
    );
    await page.goto(`${BASE}/console#/inbox`);
    const rows = page.locator("li.conv");
    await rows.nth(1).waitFor({ timeout: 30_000 });
    const search = page.locator("form.conv-find input[type=search]");
    await search.fill("SQUATS knee");
    await page.locator("li.conv .conv-name", { hasText: "Omar" }).waitFor();
    await page.locator("li.conv .conv-name", { hasText: "Lena" }).waitFor({ state: "detached" });
    assert.equal(await rows.count(), 1, "only Omar's conversation matches");
    await search.fill("story 77");
    await page.locator("li.conv .conv-name", { hasText: "Lena" }).waitFor();
    await page.locator("li.conv .conv-name", { hasText: "Omar" }).waitFor({ state: "detached" });
    await search.fill("no such words anywhere");
    await page.locator(".conv-list .empty").waitFor();
    await search.fill("");
    await rows.nth(1).waitFor();
    // "Mine": the conversation this member took over.
    await page.locator("form.conv-find select[name=view]").selectOption("mine");
    await page.locator("li.conv .conv-name", { hasText: "Omar" }).waitFor({ state: "detached" });
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().getAttribute("data-conversation"), id);
  });
});

test("the team labels, notes, resolves and inserts a canned reply with /", async () => {
  const email = `team-${gw.port}@example.com`;
  const password = "violet-quarry-Tundra-88";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Team coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const appSecret = "team-app-secret";
  const channel = await api("POST", "/v1/channels", token, {
    kind: "whatsapp",
    name: "Team",
    config: { phone_number_id: "106540352242923", access_token: "EAAG-team", app_secret: appSecret, verify_token: "verify-team" },
  });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  // Tess writes on WhatsApp (a signed webhook).
  const tess = async (wamid, body) => {
    const raw = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{ id: "WABA", changes: [{ field: "messages", value: {
        messaging_product: "whatsapp",
        metadata: { display_phone_number: "15550001112", phone_number_id: "106540352242923" },
        contacts: [{ profile: { name: "Tess" }, wa_id: "4915112340000" }],
        messages: [{ from: "4915112340000", id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: "text", text: { body } }],
      } }] }],
    });
    const r = await fetch(`${BASE}/webhooks/whatsapp/${channel.body.id}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": `sha256=${createHmac("sha256", appSecret).update(raw).digest("hex")}` },
      body: raw,
    });
    assert.equal(r.status, 200);
  };
  const tessMedia = async (wamid, type, object) => {
    const raw = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{ id: "WABA", changes: [{ field: "messages", value: {
        messaging_product: "whatsapp",
        metadata: { display_phone_number: "15550001112", phone_number_id: "106540352242923" },
        contacts: [{ profile: { name: "Tess" }, wa_id: "4915112340000" }],
        messages: [{ from: "4915112340000", id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type, [type]: object }],
      } }] }],
    });
    const r = await fetch(`${BASE}/webhooks/whatsapp/${channel.body.id}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": `sha256=${createHmac("sha256", appSecret).update(raw).digest("hex")}` },
      body: raw,
    });
    assert.equal(r.status, 200);
  };
  const until = async (what, check) => {
    for (let i = 0; i < 120; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.fail(`timed out waiting for ${what}`);
  };
  await tess("wamid.team.1", "My goal is to wake up at 6. Can we talk about my routine?");
  const id = (await api("GET", "/v1/conversations", token)).body.items[0].id;

  await withConsole("team", async (page) => {
    await logIn(page, { email, password });
    // A canned reply saved on the Team screen.
    await page.locator("nav a[data-route=team]").click();
    const cannedForm = page.locator("form.canned-form");
    await cannedForm.locator("input[name=shortcut]").fill("week");
    await cannedForm.locator("textarea[name=canned-text]").fill("How did your week go? Tell me one win.");
    await cannedForm.locator("button[type=submit]").click();
    await page.locator("tr[data-shortcut=week]").waitFor();

    await page.goto(`${BASE}/console#/inbox/${id}`);
    await page.locator("li.msg", { hasText: "my routine" }).waitFor();
    // The coach's turn is over (its answer, or its decline and a handoff) before the team acts.
    await page.locator("li.msg.out").first().waitFor({ timeout: 60_000 });
    // A label and a private note.
    await page.locator("input.label-input").fill("Morning");
    await page.locator("input.label-input").press("Enter");
    await page.locator(".chip.label[data-label=morning]").waitFor();
    await page.locator(".notes-box summary").click();
    await page.locator("textarea.note-text").fill("Prefers short check-ins");
    await page.locator(".note-form button[type=submit]").click();
    await page.locator("li.note", { hasText: "Prefers short check-ins" }).waitFor();
    // What the coach remembers: the goal in the contact's words; the team adds a note.
    await page.locator(".memory-box summary").click();
    await page.locator("li.memory-item.goal[data-source=coachee]", { hasText: "wake up at 6" }).waitFor();
    await page.locator("select.memory-kind").selectOption("note");
    await page.locator("input.memory-text").fill("Works night shifts");
    await page.locator(".memory-form button[type=submit]").click();
    await page.locator("li.memory-item.note[data-source=team]", { hasText: "Works night shifts" }).waitFor();
    // The coach detected English; the team makes it answer in Portuguese.
    await page.locator("select.contact-language option[value='']", { hasText: "(English)" }).waitFor({ state: "attached" });
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === "PATCH" && r.url().includes("/v1/contacts/") && r.ok()),
      page.locator("select.contact-language").selectOption("pt"),
    ]);
    // "/we" offers the saved reply; Tab inserts it.
    const reply = page.locator("form.reply textarea");
    await reply.fill("/we");
    await page.locator("ul.canned li[data-shortcut=week]").waitFor();
    await reply.press("Tab");
    assert.equal(await reply.inputValue(), "How did your week go? Tell me one win.");
    // Resolve, then reopen.
    await page.locator("button.resolve").click();
    await page.locator(".thread-head .badge.resolved").waitFor();
    assert.equal((await api("GET", `/v1/conversations/${id}`, token)).body.status, "resolved");
    await page.locator("button.reopen").click();
    await page.locator(".thread-head .badge.open").waitFor();

    // A daily question: Tess joins by keyword, answers yes, and the conversation charts it.
    const program = await api("POST", "/v1/programs", token, {
      name: "Move daily", keywords: ["MOVE"],
      steps: [{ id: "ask", message: "Did you move for 20 minutes today?", progress: { key: "move", kind: "yes_no" },
        buttons: [{ id: "yes", title: "Yes" }, { id: "no", title: "Not today" }],
        template: { name: "move_check", language: "en", parameters: [] }, next: "end" }],
    });
    assert.equal(program.status, 201, JSON.stringify(program.body));
    await tess("wamid.team.2", "MOVE");
    const messages = async () => (await api("GET", `/v1/conversations/${id}/messages`, token)).body.items.map((m) => JSON.stringify(m.content));
    await until("the question", async () => (await messages()).some((m) => m.includes("Did you move")));
    await tess("wamid.team.3", "Yes!");
    // A picture from Tess: fetched from the Graph API and shown in place in the conversation.
    await tessMedia("wamid.team.4", "image", { id: "MEDIAPNG1", mime_type: "image/png", sha256: "x", file_size: PICTURE.length, caption: "My walk" });
    const contactOf = (await api("GET", `/v1/conversations/${id}`, token)).body.contact_id;
    await until("the answer", async () => (await api("GET", `/v1/contacts/${contactOf}/progress`, token)).body.items.length === 1);
    await page.reload();
    await page.locator(".progress-box summary").click();
    await page.locator(".progress-item[data-key=move][data-streak='1'] svg rect").first().waitFor();
    const picture = page.locator("li.msg.in .media[data-kind=image] img");
    await picture.waitFor();
    assert.equal(await picture.evaluate((img) => img.complete && img.naturalWidth), 24);
    // A voice note: a player, and what was said under it as soon as it is heard (a live event).
    await tessMedia("wamid.team.5", "audio", { id: "MEDIAOGG1", mime_type: "audio/ogg; codecs=opus", sha256: "x", voice: true });
    await page.locator("li.msg.in .media[data-kind=audio] audio").waitFor({ timeout: 30_000 });
    await page.locator("li.msg.in .media .transcript[lang=en]", { hasText: /stop drinking coffee/i }).waitFor({ timeout: 60_000 });
    // Acknowledged in the language the team chose (Portuguese).
    await until("the acknowledgement", async () => (await messages()).some((m) => m.includes("Dias seguidos: 1")));
    await page.locator("nav a[data-route=analytics]").click();
    await page.locator("[data-chart=streaks]", { hasText: "move" }).waitFor();
    await page.locator("[data-chart=funnel] li", { hasText: "ask" }).first().waitFor();
  });
  assert.deepEqual((await api("GET", `/v1/conversations/${id}/labels`, token)).body, ["morning"]);
  const contactId = (await api("GET", `/v1/conversations/${id}`, token)).body.contact_id;
  const memory = (await api("GET", `/v1/contacts/${contactId}/memory`, token)).body.items;
  assert.deepEqual(memory.map((m) => [m.kind, m.text, m.source]), [["goal", "wake up at 6", "coachee"], ["note", "Works night shifts", "team"]]);
  const contact = (await api("GET", `/v1/contacts/${contactId}`, token)).body;
  assert.deepEqual([contact.language, contact.detected_language], ["pt", "en"]);
  const notes = (await api("GET", `/v1/conversations/${id}/notes`, token)).body;
  assert.equal(notes[0].text, "Prefers short check-ins");
  assert.equal((await api("GET", `/v1/conversations/${id}/messages`, token)).body.items.length >= 1, true);
  const audit = (await api("GET", "/v1/audit-log", token)).body.map((a) => a.action).filter((a) => a.startsWith("conversation."));
  assert.deepEqual(audit.slice(0, 2), ["conversation.reopen", "conversation.resolve"]);
});

test("a creator checks a CSV file, sees its bad rows, imports the rest and erases a contact", async () => {
  const email = `contacts-${gw.port}@example.com`;
  const password = "amber-Harbor-lantern-42";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Contacts coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const channel = await api("POST", "/v1/channels", token, {
    kind: "whatsapp",
    name: "Numbers",
    config: { phone_number_id: "106540352242924", access_token: "EAAG-contacts", app_secret: "contacts-secret", verify_token: "verify-contacts" },
  });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  const csv = [
    "name,phone,time_zone,language,consent",
    "Ana Ruiz,+49 151 20000001,Europe/Berlin,es,yes",
    "Nobody,not a number,Europe/Berlin,,",
    "Bo Lind,030 1234567,Mars/Olympus,,",
    "Cy Park,0151 20000002,Europe/Berlin,pt,no",
  ].join("\n");
  await withConsole("contacts", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=contacts]").click();
    await page.locator("table.contacts tr.empty").waitFor();
    await page.locator("input[name=import-file]").setInputFiles({ name: "clients.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    await page.locator("input[name=import-country]").fill("DE");
    await page.locator("button.check").click();
    await page.locator(".import-report .dry-run").waitFor();
    const lines = await page.locator(".import-errors li").evaluateAll((els) => els.map((e) => e.dataset.line));
    assert.deepEqual(lines, ["3", "4"], "the bad rows, by their line in the file");
    assert.equal((await api("GET", "/v1/contacts", token)).body.items.length, 0, "a dry run stores nothing");
    await page.locator("button.import").click();
    await page.locator(".import-report .imported").waitFor();
    await page.locator("tr[data-contact]", { hasText: "Cy Park" }).waitFor();
    assert.equal(await page.locator("tr[data-contact]").count(), 2);
    await shot(page, "contacts");
    page.once("dialog", (d) => d.accept());
    await page.locator("tr[data-contact]", { hasText: "Cy Park" }).locator("button.erase").click();
    await page.locator("tr[data-contact]", { hasText: "Cy Park" }).waitFor({ state: "detached" });
  });
  const left = (await api("GET", "/v1/contacts", token)).body.items;
  assert.deepEqual(left.map((c) => [c.display_name, c.language, Boolean(c.consent_at)]), [["Ana Ruiz", "es", true]]);
});
