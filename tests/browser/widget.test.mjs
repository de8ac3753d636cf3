// The web widget end to end in headless Chromium: the real gateway binary on embedded defaults
// (SQLite, qdrant-edge, the real models), its /demo page, and Playwright driving the browser.
// Run by `make test` (scripts/browser-tests.sh): GATEWAY_BIN, MODELS_DIR and CHROMIUM are set.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Gateway, launchBrowser } from "./harness.mjs";

const gw = await Gateway.create("widget");
const BASE = gw.base;
const W = "[data-coach-widget]";

let browser;

const startGateway = () => gw.start();
const stopGateway = (signal) => gw.stop(signal);

before(async () => {
  await startGateway();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await gw.remove();
});

/** Opens /demo (it reloads itself until the demo coach exists) and the widget's panel. */
async function openWidget(page) {
  await page.goto(`${BASE}/demo`);
  await page.locator(`${W} .l`).waitFor({ timeout: 60_000 });
  await page.locator(`${W} .l`).click();
  await page.locator(`${W} textarea`).waitFor();
}

async function ask(page, text) {
  await page.locator(`${W} textarea`).fill(text);
  await page.locator(`${W} textarea`).press("Enter");
}

/** Counts the moments an answer was streaming (a `.st` bubble present). */
async function watchStreaming(page) {
  await page.evaluate((sel) => {
    const root = document.querySelector(sel).shadowRoot;
    window.__streamed = 0;
    new MutationObserver(() => {
      if (root.querySelector(".st")) window.__streamed++;
    }).observe(root, { subtree: true, childList: true, characterData: true });
  }, W);
}

const stored = (page, dir) => page.locator(`${W} .g.${dir}[data-seq]`);

test("a visitor asks, sees the answer stream, and finds the history after a reload", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await openWidget(page);
  await watchStreaming(page);
  await ask(page, "How do I start the gateway?");
  await stored(page, "in").filter({ hasText: "How do I start the gateway?" }).waitFor();
  await stored(page, "out").first().waitFor({ timeout: 120_000 });
  const answer = await stored(page, "out").first().innerText();
  assert.ok(answer.trim().length > 0, "the answer is empty");
  assert.ok(await page.evaluate(() => window.__streamed) > 0, "the answer was not streamed");
  assert.equal(await page.locator(`${W} .st`).count(), 0, "the streamed bubble was not replaced");

  await page.reload();
  await page.locator(`${W} .l`).click();
  await stored(page, "out").first().waitFor();
  assert.equal(await stored(page, "in").filter({ hasText: "How do I start the gateway?" }).count(), 1);
  assert.equal(await stored(page, "out").first().innerText(), answer);

  // Feedback: 👎 on the answer is stored (after a reload it shows pressed) and is no message.
  const down = page.locator(`${W} .fb button[data-emoji='👎']`).first();
  await down.click();
  assert.equal(await down.getAttribute("aria-pressed"), "true");
  await page.waitForTimeout(1000);
  await page.reload();
  await page.locator(`${W} .l`).click();
  await page.locator(`${W} .fb button[data-emoji='👎'][aria-pressed=true]`).first().waitFor();
  assert.equal(await page.locator(`${W} .fb button[data-emoji='👍'][aria-pressed=true]`).count(), 0);
  assert.equal(await stored(page, "in").count(), 1, "the reaction showed as a message");
  await context.close();
});

test("a new visitor starts with a tap on a starter question, gone once they have written", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await openWidget(page);
  const starters = page.locator(`${W} .sq button`);
  await starters.first().waitFor();
  assert.deepEqual(await starters.allInnerTexts(), ["How do I connect WhatsApp?", "Can I run it on a GPU?", "How do I add a new channel?"]);
  await starters.filter({ hasText: "Can I run it on a GPU?" }).click();
  await stored(page, "in").filter({ hasText: "Can I run it on a GPU?" }).waitFor();
  assert.equal(await page.locator(`${W} .sq`).count(), 0, "the starters stay after the first question");
  // A returning visitor with a conversation sees their history, not the starters.
  await page.reload();
  await page.locator(`${W} .l`).click();
  await stored(page, "in").filter({ hasText: "Can I run it on a GPU?" }).waitFor();
  assert.equal(await page.locator(`${W} .sq`).count(), 0);
  await context.close();
});

test("what is typed while the gateway is down is sent once when it is back", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await openWidget(page);
  await stopGateway();
  await ask(page, "Typed while offline");
  await page.locator(`${W} .g.in.pe`).filter({ hasText: "Typed while offline" }).waitFor();
  await page.locator(`${W} .of`).waitFor({ state: "visible" });
  await startGateway();
  const delivered = stored(page, "in").filter({ hasText: "Typed while offline" });
  await delivered.waitFor({ timeout: 60_000 });
  await page.locator(`${W} .of`).waitFor({ state: "hidden" });
  // Once, with no pending copy left, and still once after the answer and a reload.
  assert.equal(await page.locator(`${W} .g.in`).filter({ hasText: "Typed while offline" }).count(), 1);
  await stored(page, "out").first().waitFor({ timeout: 120_000 });
  await page.reload();
  await page.locator(`${W} .l`).click();
  await stored(page, "out").first().waitFor();
  assert.equal(await page.locator(`${W} .g.in`).filter({ hasText: "Typed while offline" }).count(), 1);
  await context.close();
});

test("a gateway killed in the middle of an answer answers once after its restart", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await openWidget(page);
  // A question the demo coach knows, so the model generates (an "I don't know" skips it).
  await ask(page, "How do I start the gateway?");
  await stored(page, "in").filter({ hasText: "How do I start the gateway?" }).waitFor();
  // Generation has begun: the typing indicator or the streamed text is showing (or, on a fast
  // run, the answer is already stored: the restart must still not answer twice).
  await page
    .locator(`${W} .ty:not([hidden]), ${W} .st, ${W} .g.out[data-seq]`)
    .first()
    .waitFor({ timeout: 60_000 });
  await stopGateway("SIGKILL");
  await startGateway();
  await stored(page, "out").first().waitFor({ timeout: 120_000 });
  await page.waitForTimeout(3000);
  assert.equal(await stored(page, "out").count(), 1, "one answer, not zero and not two");
  await context.close();
});

test("two visitors never see each other's messages, and reset forgets a visitor", async () => {
  const a = await (await browser.newContext()).newPage();
  const b = await (await browser.newContext()).newPage();
  await openWidget(a);
  await openWidget(b);
  await ask(a, "Secret of visitor A");
  await stored(a, "in").filter({ hasText: "Secret of visitor A" }).waitFor();
  await ask(b, "Question of visitor B");
  await stored(b, "in").filter({ hasText: "Question of visitor B" }).waitFor();
  await b.waitForTimeout(500);
  assert.equal(await b.locator(`${W} .g`).filter({ hasText: "Secret of visitor A" }).count(), 0);
  assert.equal(await a.locator(`${W} .g`).filter({ hasText: "Question of visitor B" }).count(), 0);

  // On a shared machine: reset, and the next person starts with an empty conversation.
  await a.evaluate(() => window.CoachWidget.reset());
  await a.reload();
  await a.locator(`${W} .l`).click();
  await a.waitForTimeout(1000);
  assert.equal(await a.locator(`${W} .g`).filter({ hasText: "Secret of visitor A" }).count(), 0);
});

test("the widget's own texts follow the browser's language", async () => {
  const context = await browser.newContext({ locale: "es-ES" });
  const page = await context.newPage();
  await openWidget(page);
  assert.equal(await page.locator(`${W} textarea`).getAttribute("placeholder"), "Escribe un mensaje");
  assert.equal(await page.locator(`${W} .p`).getAttribute("role"), "dialog");
  await page.keyboard.press("Escape");
  await page.locator(`${W} .p`).waitFor({ state: "hidden" });
  await context.close();
});

async function api(method, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${BASE}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, json: await r.json().catch(() => null) };
}

test("a check-in's buttons answer it, and the widget's control stops check-ins", async () => {
  // A creator with a widget and a program people join by writing its keyword.
  const reg = await api("POST", "/v1/auth/register", null, {
    email: `programs-${gw.port}@example.com`, password: "violet-quarry-Tundra-88", tenant_name: "Programs" });
  assert.ok(reg.status < 300, JSON.stringify(reg.json));
  const token = reg.json.access_token;
  const channel = await api("POST", "/v1/channels", token, { kind: "web_widget", name: "Site", config: {} });
  assert.equal(channel.status, 201, JSON.stringify(channel.json));
  const template = { name: "hello", language: "en" };
  const program = await api("POST", "/v1/programs", token, {
    name: "Sleep reset", keywords: ["SLEEP7"],
    steps: [
      { id: "welcome", message: "Ready for day {day}?", template,
        buttons: [{ id: "ready", title: "Ready" }, { id: "later", title: "Not now" }],
        branches: [{ on: ["later"], goto: "nudge" }] },
      { id: "tips", message: "Tip: no coffee after 2 pm.", timing: { day: 2, at: "09:00" }, template, next: "end" },
      { id: "nudge", message: "No problem, tips start tomorrow.", next: "tips" },
    ] });
  assert.equal(program.status, 201, JSON.stringify(program.json));

  // The widget on a page of the creator's site.
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/healthz`);
  await page.evaluate(({ base, id }) => {
    const s = document.createElement("script");
    s.src = `${base}/widget.js`;
    s.setAttribute("data-channel", id);
    document.body.appendChild(s);
  }, { base: BASE, id: channel.json.id });
  await page.locator(`${W} .l`).click();
  await page.locator(`${W} .s`).waitFor({ state: "visible" });
  await ask(page, "SLEEP7");
  // The first check-in answers at once, with its buttons.
  await stored(page, "out").filter({ hasText: "Ready for day 1?" }).waitFor({ timeout: 30_000 });
  await page.locator(`${W} .ch button`, { hasText: "Not now" }).click();
  await stored(page, "in").filter({ hasText: "Not now" }).waitFor();
  await stored(page, "out").filter({ hasText: "No problem, tips start tomorrow." }).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator(`${W} .ch`).count(), 0, "the buttons stay after the answer");
  // The control stops every check-in, and the coach confirms.
  await page.locator(`${W} .s`).click();
  await stored(page, "in").filter({ hasText: "STOP" }).waitFor();
  await stored(page, "out").filter({ hasText: "no more check-ins" }).waitFor({ timeout: 30_000 });

  const analytics = await api("GET", `/v1/programs/${program.json.id}/analytics`, token);
  assert.equal(analytics.json.opted_out, 1, JSON.stringify(analytics.json));
  const welcome = analytics.json.steps.find((s) => s.step_id === "welcome");
  assert.deepEqual([welcome.sent, welcome.replied], [1, 1], JSON.stringify(analytics.json));
  const audit = await api("GET", "/v1/audit-log", token);
  assert.ok(audit.json.some((e) => e.action === "contact.opt_out"), JSON.stringify(audit.json));
  await context.close();
});

test("the coachee app installs, opens without the server and sends what was typed then once", async () => {
  // The demo's widget channel (the /demo page names it once the demo coach exists).
  let channel;
  for (let i = 0; i < 120 && !channel; i++) {
    const html = await (await fetch(`${BASE}/demo`)).text();
    channel = (html.match(/data-channel="([0-9a-f-]{36})"/) || [])[1];
    if (!channel) await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(channel, "the demo channel did not appear");
  // A phone.
  const context = await browser.newContext({ viewport: { width: 393, height: 851 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/c/${channel}`);
  assert.equal(new URL(page.url()).pathname, `/c/${channel}/`);

  // Installable: a manifest whose start URL is in its scope, shown standalone, with PNG icons of
  // the sizes it states, and a service worker that controls the app.
  const manifestUrl = new URL(await page.locator("link[rel=manifest]").getAttribute("href"), page.url());
  const manifestResponse = await fetch(manifestUrl);
  assert.equal(manifestResponse.headers.get("content-type"), "application/manifest+json");
  const manifest = await manifestResponse.json();
  assert.ok(manifest.name && manifest.short_name, JSON.stringify(manifest));
  assert.equal(manifest.display, "standalone");
  assert.equal(manifest.start_url, `/c/${channel}/`);
  assert.ok(manifest.start_url.startsWith(manifest.scope));
  const sizes = new Set();
  for (const icon of manifest.icons) {
    const r = await fetch(new URL(icon.src, manifestUrl));
    assert.equal(r.headers.get("content-type"), "image/png");
    const png = Buffer.from(await r.arrayBuffer());
    assert.equal(png.subarray(1, 4).toString(), "PNG");
    const side = Number(icon.sizes.split("x")[0]);
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [side, side]);
    sizes.add(side);
  }
  assert.ok(sizes.has(192) && sizes.has(512), [...sizes].join());
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  assert.equal(await page.evaluate(() => Boolean(navigator.serviceWorker.controller)), true, "no service worker controls the app");
  // Full screen, open, no launcher.
  await page.locator(`${W} textarea`).waitFor();
  const panel = await page.locator(`${W} .p`).boundingBox();
  assert.ok(panel.width >= 390 && panel.height >= 800, JSON.stringify(panel));
  assert.equal(await page.locator(`${W} .l`).isVisible(), false);

  // The server goes away: the app still opens from its cache and keeps what is typed.
  await stopGateway();
  await page.reload();
  await page.locator(`${W} textarea`).waitFor();
  await ask(page, "Asked while offline: what is the gateway?");
  await page.locator(`${W} .g.pe`, { hasText: "Asked while offline" }).waitFor();
  await startGateway();
  // Back: sent once, answered.
  await stored(page, "in").filter({ hasText: "Asked while offline" }).waitFor({ timeout: 60_000 });
  await stored(page, "out").first().waitFor({ timeout: 180_000 });
  await page.reload();
  await stored(page, "in").filter({ hasText: "Asked while offline" }).first().waitFor();
  assert.equal(await stored(page, "in").filter({ hasText: "Asked while offline" }).count(), 1);
  // The progress button asks for the summary.
  await page.locator(`${W} .pr`).click();
  await stored(page, "out").filter({ hasText: /progress/i }).first().waitFor({ timeout: 30_000 });
  await context.close();
});
