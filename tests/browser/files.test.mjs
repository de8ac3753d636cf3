// Files a creator sends, end to end in headless Chromium against the real gateway binary: in
// the console a creator attaches a PDF to a reply in a WhatsApp conversation, and the loopback
// Graph API receives it through its `/media` upload (the same bytes) and then a document
// message naming the uploaded id; in a widget conversation the visitor sees the file as a
// link that downloads it, and an image in place.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { deflateSync, crc32 } from "node:zlib";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Gateway, launchBrowser, consoleKit } from "./harness.mjs";

const gw = await Gateway.create("files");
const BASE = gw.base;
const SHOTS = process.env.SCREENSHOTS_DIR || join(gw.data, "screenshots");
const W = "[data-coach-widget]";
const PDF = Buffer.from("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n");

/** A PNG of `side` pixels square in one colour. */
function png(side, [r, g, b]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(side).fill([r, g, b]).flat())]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.concat(Array(side).fill(row)))), chunk("IEND", Buffer.alloc(0))]);
}

let browser;
let receiver;
const uploads = [];
const sent = [];
const { api, logIn, shot, withConsole, postWhatsApp } = consoleKit(BASE, SHOTS, () => browser);

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The Graph API: `/media` takes a multipart form and answers its id; `/messages` sends.
  receiver = createServer((req, res) => {
    const parts = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(parts);
      if (req.url.endsWith("/media")) {
        const form = await new Response(raw, { headers: { "content-type": req.headers["content-type"] } }).formData();
        const file = form.get("file");
        uploads.push({ product: form.get("messaging_product"), type: form.get("type"), name: file.name, bytes: Buffer.from(await file.arrayBuffer()) });
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: `449000${uploads.length}` }));
        return;
      }
      sent.push(JSON.parse(raw.toString("utf8") || "{}"));
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

const until = async (what, check) => {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** Attaches `file` in the open conversation and sends it with `caption`. */
async function sendFile(page, file, caption) {
  await page.locator("form.reply input[type=file]").setInputFiles(file);
  await page.locator(`form.reply .chosen .chip`, { hasText: file.name }).waitFor();
  await page.locator("form.reply textarea").fill(caption);
  await page.locator("form.reply button[type=submit]").click();
  await page.locator("form.reply .chosen .chip").waitFor({ state: "detached" });
}

test("a creator sends a PDF from the console: WhatsApp gets it by upload, the widget shows it", async () => {
  const email = `files-${gw.port}@example.com`;
  const password = "saffron-Meadow-ripple-58";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Files coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const config = { phone_number_id: "106540352242931", access_token: "EAAG-files", app_secret: "files-secret", verify_token: "verify-files" };
  const wa = await api("POST", "/v1/channels", token, { kind: "whatsapp", name: "Phone", config });
  assert.equal(wa.status, 201, JSON.stringify(wa.body));
  const who = { name: "Noa", wa_id: "4915112349999" };
  const status = await postWhatsApp({ id: wa.body.id, ...config }, [{ from: who.wa_id, id: "wamid.files.1", timestamp: String(Math.floor(Date.now() / 1000)), type: "text", text: { body: "Can you send me the plan?" } }], who);
  assert.equal(status, 200);
  await until("the conversation", async () => (await api("GET", "/v1/conversations", token)).body.items.length === 1);
  const waConv = (await api("GET", "/v1/conversations", token)).body.items[0].id;

  const site = await api("POST", "/v1/channels", token, { kind: "web_widget", name: "Site", config: { title: "Files coach" } });
  const context = await browser.newContext();
  const visitor = await context.newPage();
  try {
    await visitor.goto(`${BASE}/c/${site.body.id}/`);
    await visitor.locator(`${W} textarea`).waitFor();
    await visitor.locator(`${W} textarea`).fill("Hello, is there a worksheet?");
    await visitor.locator(`${W} textarea`).press("Enter");
    await visitor.locator(`${W} .g.in[data-seq]`).waitFor();
    const convs = async () => (await api("GET", "/v1/conversations", token)).body.items;
    await until("the widget conversation", async () => (await convs()).length === 2);
    const webConv = (await convs()).find((c) => c.id !== waConv).id;

    await withConsole("files", async (page) => {
      await logIn(page, { email, password });
      // WhatsApp: the PDF goes up to /media, then as a document by its id.
      await page.goto(`${BASE}/console#/inbox/${waConv}`);
      await page.locator("form.reply textarea").waitFor();
      await sendFile(page, { name: "Week 1 plan.pdf", mimeType: "application/pdf", buffer: PDF }, "Here is your plan");
      await page.locator("li.msg.out .media a", { hasText: "Week 1 plan.pdf" }).waitFor();
      await until("the document message", () => sent.some((m) => m.type === "document"));
      assert.equal(uploads.length, 1);
      assert.deepEqual([uploads[0].product, uploads[0].type, uploads[0].name], ["whatsapp", "application/pdf", "Week 1 plan.pdf"]);
      assert.ok(uploads[0].bytes.equals(PDF), "the same bytes");
      const doc = sent.find((m) => m.type === "document");
      assert.deepEqual(doc.document, { id: "4490001", filename: "Week 1 plan.pdf", caption: "Here is your plan" });
      assert.equal(doc.to, who.wa_id);
      await shot(page, "console-file-sent");

      // The widget: the same PDF from the library, and an image.
      await page.goto(`${BASE}/console#/inbox/${webConv}`);
      await page.locator("form.reply textarea").waitFor();
      await sendFile(page, { name: "Week 1 plan.pdf", mimeType: "application/pdf", buffer: PDF }, "");
      await sendFile(page, { name: "chart.png", mimeType: "image/png", buffer: png(40, [30, 90, 200]) }, "Your chart");
      await page.locator("li.msg.out .media[data-kind=image] img").waitFor();
    });

    const link = visitor.locator(`${W} .g.out a.fl`, { hasText: "Week 1 plan.pdf" });
    await link.waitFor();
    const href = await link.getAttribute("href");
    const got = await fetch(href);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("content-type"), "application/pdf");
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(PDF), "the link downloads the PDF");
    const image = visitor.locator(`${W} .g.out a.fl img`);
    await image.waitFor();
    await visitor.waitForFunction((el) => el.complete && el.naturalWidth === 40, await image.elementHandle());
    await visitor.locator(`${W} .g.out`, { hasText: "Your chart" }).waitFor();
    // After a reload the history shows them again.
    await visitor.reload();
    await visitor.locator(`${W} .g.out a.fl`, { hasText: "Week 1 plan.pdf" }).waitFor();
    await shot(visitor, "widget-files");
  } finally {
    await context.close();
  }
  assert.equal(uploads.length, 1, "the widget needs no provider upload");
});
