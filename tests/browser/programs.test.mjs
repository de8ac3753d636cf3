// The visual program builder end to end in headless Chromium, against the real gateway binary:
// a program with two reply branches and a WhatsApp template is built by dragging between nodes,
// a problem the API finds is shown on its node, the program is saved, changed and its versions
// compared, and it runs: a visitor writes its keyword in the widget, taps a button and gets the
// branch's step.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Gateway, launchBrowser, consoleKit } from "./harness.mjs";

const gw = await Gateway.create("programs");
const BASE = gw.base;
const SHOTS = process.env.SCREENSHOTS_DIR || join(gw.data, "screenshots");
const W = "[data-coach-widget]";

let browser;
const { api, logIn, shot, withConsole } = consoleKit(BASE, SHOTS, () => browser);

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await gw.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await gw.remove();
});

/** Drags from a node's port (`next`, `branch`, `silence`) onto another node. */
async function wire(page, from, port, to) {
  await page.locator(`g.node[data-step="${to}"] rect`).scrollIntoViewIfNeeded();
  await page.locator(`g.node[data-step="${from}"] circle.port.${port}`).scrollIntoViewIfNeeded();
  const a = await page.locator(`g.node[data-step="${from}"] circle.port.${port}`).boundingBox();
  const b = await page.locator(`g.node[data-step="${to}"] rect`).boundingBox();
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 8 });
  await page.mouse.up();
}

test("a program with two branches and a template is built in the visual builder, saved, and runs", async () => {
  const email = `builder-${gw.port}@example.com`;
  const password = "juniper-Copper-meadow-19";
  const reg = await api("POST", "/v1/auth/register", null, { email, password, tenant_name: "Builder coach" });
  assert.equal(reg.status, 201);
  const token = reg.body.access_token;
  const channel = await api("POST", "/v1/channels", token, { kind: "web_widget", name: "Site", config: {} });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  let program;

  await withConsole("builder", async (page) => {
    await logIn(page, { email, password });
    await page.locator("nav a[data-route=programs]").click();
    await page.locator("button", { hasText: "New program" }).click();
    const editor = page.locator("form.program-editor");
    await editor.locator("input[name=program_name]").fill("Morning walk");
    await editor.locator("input[name=keywords]").fill("WALK");
    // Program-wide: a variable with its default, and overdue steps sent late.
    await editor.locator("details.program-settings summary").click();
    await editor.locator("textarea[name=variables]").fill("coach_name = Ana\nroute=the park");
    await editor.locator("input[name=tolerance_minutes]").fill("60");
    await editor.locator("select[name=catch_up_policy]").selectOption("delay");
    const form = editor.locator(".inspector");
    // The first step, selected: its message, buttons and WhatsApp template.
    await form.locator("textarea[name=message]").fill("Did you walk today?");
    await form.locator("input[name=buttons]").fill("Yes, No");
    await form.locator("input[name=buttons]").press("Tab");
    await form.locator("input[name=template_name]").fill("walk_check");
    await form.locator("input[name=template_name]").press("Tab");
    await form.locator("input[name=template_language]").fill("en");
    await form.locator("input[name=template_language]").press("Tab");
    // Only a reply leads on: without one the program ends.
    await form.locator("select[name=next]").selectOption("end");
    // Two more steps, named on their nodes' forms, sent at once when a reply leads to them.
    for (const [id, text] of [["great", "Great, keep going!"], ["tomorrow", "Tomorrow is a new day."]]) {
      await editor.locator("button.add-step").click();
      await form.locator("input[name=step_id]").fill(id);
      await form.locator("input[name=step_id]").press("Tab");
      await page.locator(`g.node[data-step="${id}"]`).waitFor();
      await form.locator("select[name=timing]").selectOption("now");
      await form.locator("select[name=next]").selectOption("end");
      if (id === "great") {
        await form.locator("textarea[name=message]").fill(text);
        // A progress question, and a milestone on it.
        await form.locator("input[name=progress_key]").fill("walk");
        await form.locator("select[name=progress_kind]").selectOption("yes_no");
      } else await form.locator("textarea[name=message]").fill("");
    }
    await editor.locator("button.add-milestone").click();
    await editor.locator("input[name=milestone_key_0]").fill("walk");
    await editor.locator("input[name=milestone_count_0]").fill("3");
    await editor.locator("input[name=milestone_message_0]").fill("{streak} days in a row!");
    await editor.locator("input[name=milestone_message_0]").press("Tab");
    // Branches are drawn by dragging from the first step's branch port onto a step.
    await wire(page, "welcome", "branch", "great");
    await wire(page, "welcome", "branch", "tomorrow");
    await page.locator(`g.edge.branch[data-from="welcome"][data-to="great"]`).waitFor();
    await page.locator(`g.edge.branch[data-from="welcome"][data-to="tomorrow"]`).waitFor();
    // The branches took the buttons' ids, in order.
    await page.locator("g.node[data-step=welcome] rect").click();
    assert.equal(await form.locator("input[name=branch_on_0]").inputValue(), "yes");
    assert.equal(await form.locator("input[name=branch_on_1]").inputValue(), "no");

    // "tomorrow" has no message yet: the API's problem is shown on its node, nothing stored.
    await editor.locator("button[type=submit]").click();
    await page.locator(`g.node.invalid[data-step="tomorrow"]`).waitFor();
    assert.match(await form.locator(".problems").innerText(), /message/);
    assert.equal((await api("GET", "/v1/programs", token)).body.length, 0);
    await page.locator(".builder .canvas").scrollIntoViewIfNeeded();
    await shot(page, "builder-invalid");
    await form.locator("textarea[name=message]").fill("Tomorrow is a new day.");
    await editor.locator("button[type=submit]").click();
    await page.locator("#toast:not([hidden])", { hasText: "Saved" }).waitFor();
    await editor.locator("button[type=submit]", { hasText: "Save" }).waitFor();

    const programs = (await api("GET", "/v1/programs", token)).body;
    assert.equal(programs.length, 1);
    program = programs[0];
    const [welcome, great, tomorrow] = program.definition.steps;
    assert.deepEqual(welcome.branches, [{ on: ["yes"], goto: "great" }, { on: ["no"], goto: "tomorrow" }]);
    assert.deepEqual(welcome.template, { name: "walk_check", language: "en", parameters: [] });
    assert.deepEqual(welcome.buttons, [{ id: "yes", title: "Yes" }, { id: "no", title: "No" }]);
    assert.equal(welcome.next, "end");
    assert.equal(great.next, "end");
    assert.deepEqual(great.progress, { key: "walk", kind: "yes_no" });
    assert.deepEqual(program.definition.milestones, [{ key: "walk", streak: 3, message: "{streak} days in a row!" }]);
    assert.equal(tomorrow.message, "Tomorrow is a new day.");
    assert.deepEqual(program.definition.variables, { coach_name: "Ana", route: "the park" });
    assert.deepEqual(program.definition.catch_up, { tolerance_minutes: 60, policy: "delay" });

    // A second version, compared with the first on the page.
    await page.locator(`g.node[data-step="great"] rect`).click();
    await form.locator("textarea[name=message]").fill("Great, keep going! 🚶");
    await editor.locator("button[type=submit]").click();
    await page.locator(".versions tr[data-step=great][data-change=changed]", { hasText: "message" }).waitFor();
    await page.locator(".builder .canvas").scrollIntoViewIfNeeded();
    await shot(page, "builder");
    // A node moved by hand keeps its place when the program is opened again.
    const node = page.locator(`g.node[data-step="tomorrow"]`);
    const box = await node.locator("rect").boundingBox();
    await page.mouse.move(box.x + 20, box.y + 10);
    await page.mouse.down();
    await page.mouse.move(box.x + 20, box.y + 130, { steps: 8 });
    await page.mouse.up();
    const placed = await node.getAttribute("transform");
    await page.reload();
    await page.locator("#live.on").waitFor();
    await page.locator("nav a[data-route=programs]").click();
    await page.locator("ul.programs li", { hasText: "Morning walk" }).locator("button").first().click();
    await page.locator(`g.node[data-step="tomorrow"]`).waitFor();
    assert.equal(await page.locator(`g.node[data-step="tomorrow"]`).getAttribute("transform"), placed);
  });

  // It runs: a visitor writes the keyword in the widget and taps "Yes".
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${BASE}/healthz`);
    await page.evaluate(({ base, id }) => {
      const s = document.createElement("script");
      s.src = `${base}/widget.js`;
      s.setAttribute("data-channel", id);
      document.body.appendChild(s);
    }, { base: BASE, id: channel.body.id });
    await page.locator(`${W} .l`).click();
    await page.locator(`${W} textarea`).fill("WALK");
    await page.locator(`${W} textarea`).press("Enter");
    await page.locator(`${W} .g.out[data-seq]`, { hasText: "Did you walk today?" }).waitFor({ timeout: 30_000 });
    // Nothing follows until the visitor answers.
    await page.waitForTimeout(2000);
    assert.equal(await page.locator(`${W} .g.out`, { hasText: "Great, keep going" }).count(), 0);
    await page.locator(`${W} .ch button`, { hasText: "Yes" }).click();
    await page.locator(`${W} .g.out[data-seq]`, { hasText: "Great, keep going! 🚶" }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator(`${W} .g.out`, { hasText: "Tomorrow is a new day." }).count(), 0);
  } finally {
    await context.close();
  }
  const analytics = (await api("GET", `/v1/programs/${program.id}/analytics`, token)).body;
  const sent = Object.fromEntries(analytics.steps.map((s) => [s.step_id, s.sent]));
  assert.equal(sent.welcome, 1, JSON.stringify(analytics));
  assert.equal(sent.great, 1, JSON.stringify(analytics));
});
