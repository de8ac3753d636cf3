// The inbox benchmark's browser half (run by `cargo bench --bench inbox`, not by `make test`):
// logs in to the console at BASE as EMAIL/PASSWORD, then RUNS times opens the Inbox from another
// screen and times it until its first 100 rows are drawn (the list request, the JSON and the
// DOM, up to the next frame). Prints the milliseconds as a JSON array.

import { launchBrowser, consoleKit } from "./harness.mjs";

const { BASE, EMAIL, PASSWORD } = process.env;
const RUNS = Number(process.env.RUNS || 30);
const browser = await launchBrowser();
try {
  const { logIn } = consoleKit(BASE, "/tmp", () => browser);
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await logIn(page, { email: EMAIL, password: PASSWORD });
  const times = [];
  for (let i = 0; i < RUNS + 1; i++) {
    await page.evaluate(() => (location.hash = "#/knowledge"));
    await page.locator("main[data-view=knowledge]").waitFor();
    const ms = await page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const start = performance.now();
          const drawn = () => document.querySelectorAll("main[data-view=inbox] .conv-list li.conv").length >= 100;
          const watch = new MutationObserver(() => {
            if (!drawn()) return;
            watch.disconnect();
            requestAnimationFrame(() => resolve(performance.now() - start));
          });
          watch.observe(document.body, { subtree: true, childList: true });
          setTimeout(() => reject(new Error("no 100 rows within 10 s")), 10_000);
          location.hash = "#/inbox";
        }),
    );
    if (i > 0) times.push(ms); // the first opening warms the browser's caches
  }
  process.stdout.write(JSON.stringify(times));
} finally {
  await browser.close();
}
