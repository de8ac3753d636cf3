// Voice notes from the widget in headless Chromium: the microphone is a recording spoken by
// espeak-ng (Chromium's fake capture device plays it), the widget records it with MediaRecorder
// and uploads it; the real gateway binary hears it with its speech worker (coach-whisper, the
// converted Whisper model) and the demo coach answers it. Run by `make test`
// (scripts/browser-tests.sh): GATEWAY_BIN, MODELS_DIR and CHROMIUM are set.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Gateway } from "./harness.mjs";

const gw = await Gateway.create("voice");
const W = "[data-coach-widget]";
const dir = mkdtempSync(join(tmpdir(), "coach-voice-"));
const SCRIPT = "How do I start the gateway?";
const wav = join(dir, "question.wav");

let browser;

before(async () => {
  execFileSync("espeak-ng", ["-v", "en", "-s", "140", "-w", wav, SCRIPT]);
  await gw.start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}%noloop`,
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  await gw.remove();
  rmSync(dir, { recursive: true, force: true });
});

const stored = (page, dir) => page.locator(`${W} .g.${dir}[data-seq]`);

test("a visitor records a voice note in the widget: it is heard, shown and answered", async () => {
  const context = await browser.newContext();
  await context.grantPermissions(["microphone"]);
  const page = await context.newPage();
  await page.goto(`${gw.base}/demo`);
  await page.locator(`${W} .l`).waitFor({ timeout: 60_000 });
  await page.locator(`${W} .l`).click();
  const mic = page.locator(`${W} .mi`);
  await mic.waitFor({ timeout: 30_000 });
  assert.equal(await mic.getAttribute("aria-label"), "Record a voice note");

  await mic.click();
  await page.locator(`${W} .mi[aria-pressed=true]`).waitFor();
  // The capture device plays the question (about two seconds), then silence.
  await page.waitForTimeout(3500);
  await mic.click();
  // Shown at once with a player, then confirmed by the gateway.
  const note = page.locator(`${W} .g.in.up`).filter({ hasText: "Voice note" });
  await note.locator("audio").waitFor();
  await page.locator(`${W} .g.in.up[data-seq]`).waitFor({ timeout: 30_000 });
  // Heard and answered by the coach like a typed question.
  await stored(page, "out").first().waitFor({ timeout: 180_000 });

  // After a reload the note shows what was said in it.
  await page.reload();
  await page.locator(`${W} .l`).click();
  const heard = stored(page, "in").filter({ hasText: "\u{1f3a4}" }).first();
  await heard.waitFor({ timeout: 30_000 });
  const text = (await heard.textContent()).toLowerCase();
  for (const word of ["start", "gateway"]) assert.ok(text.includes(word), text);
  await context.close();
});
