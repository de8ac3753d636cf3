// The program builder's graph model (console/builder.js), in node: edges, layout, renaming and
// removing steps with their references, connecting by port, placing the API's problems on
// steps, and comparing versions.
import { test } from "node:test";
import assert from "node:assert/strict";

globalThis.localStorage = { getItem: () => null, setItem: () => {} };
globalThis.document = { documentElement: {} };
Object.defineProperty(globalThis, "navigator", { value: { languages: ["en"] }, configurable: true });

const { edges, layout, rename, removeStep, connect, problemsByStep, compare, validId, buttonsFrom } = await import("../../console/builder.js");

const program = () => [
  { id: "welcome", message: "Ready?", buttons: [{ id: "yes", title: "Yes" }, { id: "no", title: "No" }], branches: [{ on: ["no"], goto: "nudge" }] },
  { id: "tips", message: "Tip", next: "end" },
  { id: "nudge", message: "Tomorrow", next: "tips", if_no_reply_after: 60, no_reply_goto: "tips" },
];

test("edges follow next (listed or explicit), branches and the silence branch", () => {
  assert.deepEqual(edges(program()).map((e) => `${e.from}-${e.kind}-${e.to}`), [
    "welcome-next-tips", "welcome-branch-nudge", "nudge-next-tips", "nudge-silence-tips",
  ]);
  assert.deepEqual(edges(program()).filter((e) => e.kind === "next").map((e) => e.implied), [true, false], "listing order only implies a next step");
});

test("layout puts steps in columns by distance from the first, unreached ones in the second", () => {
  const steps = [...program(), { id: "orphan", message: "x" }];
  const pos = layout(steps);
  assert.equal(pos.get("welcome").x < pos.get("tips").x, true);
  assert.equal(pos.get("tips").x, pos.get("nudge").x);
  assert.notEqual(pos.get("tips").y, pos.get("nudge").y);
  assert.equal(pos.get("orphan").x, pos.get("tips").x);
  const ys = new Set([...pos.values()].map((p) => `${p.x},${p.y}`));
  assert.equal(ys.size, 4, "no two steps on one place");
});

test("renaming and removing a step carry its references", () => {
  const steps = program();
  rename(steps, "tips", "advice");
  assert.equal(steps[1].id, "advice");
  assert.equal(steps[2].next, "advice");
  assert.equal(steps[2].no_reply_goto, "advice");
  removeStep(steps, "nudge");
  assert.deepEqual(steps.map((s) => s.id), ["welcome", "advice"]);
  assert.deepEqual(steps[0].branches, []);
  steps[0].next = "advice";
  removeStep(steps, "advice");
  assert.equal(steps[0].next, "end", "an explicit next to a removed step ends the program");
});

test("a port dragged onto a step connects by its kind; branches take free button ids", () => {
  const steps = program();
  connect(steps, "welcome", "branch", "tips");
  assert.deepEqual(steps[0].branches[1], { on: ["yes"], goto: "tips" });
  connect(steps, "tips", "silence", "welcome");
  assert.equal(steps[1].no_reply_goto, "welcome");
  assert.equal(steps[1].if_no_reply_after, 1440);
  connect(steps, "tips", "next", "nudge");
  assert.equal(steps[1].next, "nudge");
  connect(steps, "tips", "next", "nowhere");
  assert.equal(steps[1].next, "nudge", "an unknown target changes nothing");
});

test("the API's problems are placed on the step they name", () => {
  const ids = program().map((s) => s.id);
  const { byStep, general } = problemsByStep(ids, "name: 1 to 100 characters; steps[2] (nudge).next: no step \"x\"; steps[0].message: 1 to 4096 characters; " +
    "steps[1] (tips).timing: 24 h after the last; give the approved template; steps (tips): no step leads here");
  assert.deepEqual(general, ["name: 1 to 100 characters"]);
  assert.deepEqual([...byStep.keys()], ["nudge", "welcome", "tips"]);
  assert.deepEqual(byStep.get("tips"), ["steps[1] (tips).timing: 24 h after the last; give the approved template", "steps (tips): no step leads here"]);
});

test("step ids and buttons follow the API's rules; a retitled button keeps its id", () => {
  assert.equal(validId("day_2-evening"), true);
  for (const bad of ["end", "", "a b", "x".repeat(65), "día"]) assert.equal(validId(bad), false, bad);
  const old = [{ id: "yes", title: "Yes" }, { id: "no", title: "No" }];
  assert.deepEqual(buttonsFrom(["Sure", "No", "Sí sí"], old), [{ id: "yes", title: "Sure" }, { id: "no", title: "No" }, { id: "si_si", title: "Sí sí" }]);
  assert.deepEqual(buttonsFrom(["A b", "A-b"]).map((b) => b.id), ["a_b", "a_b_2"]);
});

test("versions compare step by step", () => {
  const older = { name: "A", steps: program() };
  const newer = { name: "B", steps: program().filter((s) => s.id !== "tips").concat([{ id: "extra", message: "+" }]) };
  newer.steps[0].message = "Ready now?";
  assert.deepEqual(compare(older, newer), [
    { step: "", change: "changed", fields: ["name"] },
    { step: "welcome", change: "changed", fields: ["message"] },
    { step: "tips", change: "removed", fields: [] },
    { step: "extra", change: "added", fields: [] },
  ]);
  assert.deepEqual(compare(older, older), []);
});
