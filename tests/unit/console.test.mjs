// The console's DOM helper h() (console/ui.js) and its texts (console/i18n.js), in node with a
// minimal document: everything a contact writes goes in as a text node, never as HTML.
import { test } from "node:test";
import assert from "node:assert/strict";

class Node {}
class Text extends Node {
  constructor(data) { super(); this.data = data; }
}
class Element extends Node {
  constructor(tag) {
    super();
    this.tagName = tag.toUpperCase();
    this.attributes = {};
    this.children = [];
    this.listeners = {};
    this.className = "";
  }
  setAttribute(k, v) { this.attributes[k] = String(v); }
  addEventListener(name, fn) { this.listeners[name] = fn; }
  append(...nodes) { this.children.push(...nodes); }
  set innerHTML(_) { throw new Error("h() must never set HTML"); }
}
globalThis.Node = Node;
globalThis.document = {
  createElement: (tag) => new Element(tag),
  createTextNode: (data) => new Text(data),
  documentElement: {},
};
globalThis.localStorage = { getItem: () => null, setItem: () => {} };
Object.defineProperty(globalThis, "navigator", { value: { languages: ["en-GB"] }, configurable: true });

const { h } = await import("../../console/ui.js");
const { LANGS, TEXTS, setLang, t } = await import("../../console/i18n.js");

test("children are text nodes, never markup", () => {
  const evil = "<img src=x onerror=alert(1)>";
  const el = h("p", {}, evil, 42, null, false, undefined, ["a", ["b"]]);
  assert.equal(el.tagName, "P");
  assert.deepEqual(el.children.map((c) => c instanceof Text && c.data), [evil, "42", "a", "b"]);
});

test("attributes are set as values; handlers as listeners", () => {
  const click = () => {};
  const el = h("button", { class: "primary", title: '"><script>', onclick: click, disabled: true, hidden: false, "data-x": null });
  assert.equal(el.className, "primary");
  assert.equal(el.attributes.title, '"><script>');
  assert.equal(el.attributes.disabled, "");
  assert.ok(!("hidden" in el.attributes) && !("data-x" in el.attributes));
  assert.equal(el.listeners.click, click);
  assert.ok(!("onclick" in el.attributes), "a handler is never an attribute");
});

test("child elements are kept as they are", () => {
  const inner = h("b", {}, "x");
  assert.equal(h("p", {}, inner).children[0], inner);
});

test("every text exists in every language and fills its placeholders", () => {
  const english = Object.keys(TEXTS.en).sort();
  for (const l of LANGS) assert.deepEqual(Object.keys(TEXTS[l]).sort(), english, `${l} differs from en`);
  setLang("en");
  assert.equal(t("unread", { n: 3 }), "3 unread");
  assert.equal(t("no-such-key"), "no-such-key");
});
