// Accessibility of every console screen and of the widget, checked by axe-core (WCAG 2 A and AA
// rules) in headless Chromium against the real gateway: no serious or critical violation, at a
// desktop and a phone width, in English and Spanish.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Gateway, launchBrowser, consoleKit } from "./harness.mjs";

// Evaluated through the DevTools protocol: the pages' CSP (no inline script) stays on.
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const gw = await Gateway.create("a11y");
const BASE = gw.base;
const SHOTS = process.env.SCREENSHOTS_DIR || join(gw.data, "screenshots");
const ROUTES = ["inbox", "contacts", "knowledge", "coach", "widget", "channels", "programs", "analytics", "team", "activity"];
const SIZES = [["desktop", { width: 1280, height: 800 }], ["phone", { width: 390, height: 844 }]];

let browser;
const { api, logIn, withConsole } = consoleKit(BASE, SHOTS, () => browser);

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await gw.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await gw.remove();
});

/** Serious and critical violations on the page as it is now, one line each. */
async function violations(page) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
  });
  return found;
}

test("every console screen and the widget pass axe-core at desktop and phone widths, in English and Spanish", async () => {
  const email = `a11y-${gw.port}@example.com`;
  const password = "lantern-Quartz-river-83";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Access coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const widget = await api("POST", "/v1/channels", token, { kind: "web_widget", name: "Site", config: { starters: ["How do I start?"] } });
  assert.equal(widget.status, 201);
  const program = await api("POST", "/v1/programs", token, { name: "Walk", steps: [
    { id: "welcome", message: "Ready?", template: { name: "walk_hello", language: "en" }, next: "end",
      buttons: [{ id: "yes", title: "Yes" }], branches: [{ on: ["yes"], goto: "tip" }] },
    { id: "tip", message: "Walk 10 minutes.", next: "end" },
  ] });
  assert.equal(program.status, 201, JSON.stringify(program.body));
  const problems = [];
  for (const lang of ["en", "es"]) {
    for (const [size, viewport] of SIZES) {
      await withConsole(`a11y-${lang}-${size}`, async (page, context) => {
        await page.setViewportSize(viewport);
        await context.addInitScript((l) => localStorage.setItem("coach.lang", l), lang);
        await logIn(page, { email, password });
        for (const route of ROUTES) {
          await page.goto(`${BASE}/console#/${route}`);
          await page.locator(`main[data-view="${route}"] h1`).first().waitFor();
          // The view's data (it keeps an event stream open, so the network is never idle).
          await page.waitForTimeout(500);
          if (route === "programs") {
            // The builder open on the program.
            await page.locator(".programs li button").first().click();
            await page.locator(".builder g.node").first().waitFor();
          }
          for (const v of await violations(page)) problems.push(`${lang} ${size} ${route}: ${v}`);
        }
      });
      // The widget, as a visitor sees it (the coachee app page), open.
      const context = await browser.newContext({ viewport });
      await context.addInitScript((l) => Object.defineProperty(navigator, "languages", { get: () => [l] }), lang);
      const page = await context.newPage();
      try {
        await page.goto(`${BASE}/c/${widget.body.id}/`);
        await page.locator("[data-coach-widget] textarea").waitFor();
        for (const v of await violations(page)) problems.push(`${lang} ${size} widget: ${v}`);
      } finally {
        await context.close();
      }
    }
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});
