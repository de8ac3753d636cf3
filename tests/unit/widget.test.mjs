// The widget's markdown (widget-js/widget.js), run in node without a page: whatever a reply
// says, only the few tags the markdown makes reach the page, and links go to http(s) only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const source = readFileSync(new URL("../../widget-js/widget.js", import.meta.url), "utf8");
let exported;
vm.runInNewContext(source, { __coachWidgetUnderTest: (api) => { exported = api; } });
const { markdown } = exported;

test("text is escaped before any markdown", () => {
  assert.equal(markdown("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;");
  assert.equal(markdown(`a & "b" 'c'`), "a &amp; &quot;b&quot; &#39;c&#39;");
  assert.equal(markdown("**<script>**"), "<b>&lt;script&gt;</b>");
});

test("a few patterns become tags", () => {
  assert.equal(markdown("use `make run` **now**"), "use <code>make run</code> <b>now</b>");
  assert.equal(markdown("an *aside*"), "an <i>aside</i>");
  assert.equal(markdown("- one\n* two"), "\u2022 one\n\u2022 two");
  assert.equal(
    markdown("[docs](https://example.com/a?b=1)"),
    "<a href='https://example.com/a?b=1' target='_blank' rel='noopener noreferrer'>docs</a>",
  );
});

test("links cannot run script or leave their attribute", () => {
  assert.equal(markdown("[x](javascript:alert(1))"), "[x](javascript:alert(1))");
  assert.equal(markdown("[x](data:text/html,hi)"), "[x](data:text/html,hi)");
  const out = markdown("[x](https://e.com/'onmouseover='alert(1))");
  assert.ok(!/'onmouseover/.test(out), out);
  assert.ok(out.includes("&#39;onmouseover=&#39;"), out);
});

test("the widget without a page does nothing else", () => {
  // No document: the file returns after handing out the markdown, touching no global.
  const context = {};
  vm.runInNewContext(source, context);
  assert.deepEqual(Object.keys(context), []);
});
