// The visual program builder: a program's steps as a graph (a node per step; edges for `next`,
// reply branches and the silence branch), connected by dragging from a node's port onto another
// node, or with the selects of the step's form from the keyboard. Every field of a step is
// edited in its form beside the graph; the API's validation problems are shown on the node they
// name; two versions are compared step by step. Plain ES module and SVG, no build step.

import { t } from "./i18n.js";
import { h, clear, field } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const W = 170, H = 78, GX = 215, GY = 104, PAD = 20;
const PORTS = [["next", W, H / 2], ["branch", W - 30, H], ["silence", 30, H]];

/** An SVG element (h() makes HTML ones). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** The step a step leads to when no branch matched (`null`: the program ends). */
export function nextOf(steps, i) {
  const n = steps[i].next;
  if (n === "end") return null;
  return n ?? steps[i + 1]?.id ?? null;
}

/** Every edge of the graph: `{ from, to, kind, label }`. */
export function edges(steps) {
  const out = [];
  steps.forEach((st, i) => {
    const n = nextOf(steps, i);
    if (n) out.push({ from: st.id, to: n, kind: "next", label: "", implied: !st.next });
    for (const b of st.branches || []) out.push({ from: st.id, to: b.goto, kind: "branch", label: (b.on || []).join(", ") });
    if (st.no_reply_goto) out.push({ from: st.id, to: st.no_reply_goto, kind: "silence", label: `${st.if_no_reply_after ?? "?"} min` });
  });
  return out;
}

/** Columns by distance from the first step (breadth first), rows in the order found; steps
 * nothing leads to yet (one just added) go in the second column, below the others. */
export function layout(steps) {
  const level = new Map();
  const all = edges(steps);
  if (steps.length) level.set(steps[0].id, 0);
  const queue = steps.length ? [steps[0].id] : [];
  while (queue.length) {
    const id = queue.shift();
    for (const e of all.filter((x) => x.from === id)) {
      if (!level.has(e.to) && steps.some((x) => x.id === e.to)) {
        level.set(e.to, level.get(id) + 1);
        queue.push(e.to);
      }
    }
  }
  for (const st of steps) if (!level.has(st.id)) level.set(st.id, 1);
  const rows = new Map();
  const pos = new Map();
  for (const st of steps) {
    const col = level.get(st.id);
    const row = rows.get(col) || 0;
    rows.set(col, row + 1);
    pos.set(st.id, { x: PAD + col * GX, y: PAD + row * GY });
  }
  return pos;
}

/** A step renamed: every reference to it follows. */
export function rename(steps, from, to) {
  for (const st of steps) {
    if (st.id === from) st.id = to;
    if (st.next === from) st.next = to;
    if (st.no_reply_goto === from) st.no_reply_goto = to;
    for (const b of st.branches || []) if (b.goto === from) b.goto = to;
  }
}

/** A step removed with every edge to it. */
export function removeStep(steps, id) {
  const i = steps.findIndex((x) => x.id === id);
  if (i >= 0) steps.splice(i, 1);
  for (const st of steps) {
    if (st.next === id) st.next = "end";
    if (st.no_reply_goto === id) { delete st.no_reply_goto; delete st.if_no_reply_after; }
    if (st.branches) st.branches = st.branches.filter((b) => b.goto !== id);
  }
}

/** Connect `from` to `to` by the kind of port dragged from. */
export function connect(steps, from, kind, to) {
  const st = steps.find((x) => x.id === from);
  if (!st || !steps.some((x) => x.id === to)) return;
  if (kind === "next") st.next = to;
  else if (kind === "silence") {
    st.no_reply_goto = to;
    st.if_no_reply_after ??= 1440;
  } else {
    st.branches ||= [];
    const used = new Set(st.branches.flatMap((b) => b.on || []));
    const free = (st.buttons || []).map((b) => b.id).find((id) => !used.has(id));
    st.branches.push({ on: [free || ""], goto: to });
  }
}

/** The API's 422 detail by step id, and the rest. Problems are joined with "; " (which a
 * problem's own text may contain too): a new one starts with a path of the definition, and
 * names its step as `steps[2] (nudge)`, `steps[2]` or `steps (nudge)`; `ids` are the step ids
 * as they were sent. */
export function problemsByStep(ids, detail) {
  const byStep = new Map();
  const general = [];
  const parts = String(detail || "").split(/; (?=(?:name|goal|keywords|variables|catch_up|steps|milestones)\b)/);
  for (const p of parts.filter(Boolean)) {
    const m = p.match(/^steps(?:\[(\d+)\])?(?: \(([^)]+)\))?/);
    const id = m && (m[2] ?? ids[Number(m[1])]);
    if (id !== undefined && id !== null && ids.includes(id)) byStep.set(id, [...(byStep.get(id) || []), p]);
    else general.push(p);
  }
  return { byStep, general };
}

/** Whether `id` can name a step (the API's rule; `end` ends a program). */
export function validId(id) {
  return /^[A-Za-z0-9_-]{1,64}$/.test(id) && id !== "end";
}

/** Buttons from typed titles: a button keeps its id by position (a branch on it keeps working);
 * a new one gets an id from its title, unique. */
export function buttonsFrom(titles, old = []) {
  const taken = new Set();
  return titles.map((title, i) => {
    let id = old[i]?.id || title.toLowerCase().normalize("NFD").replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 40) || `b${i + 1}`;
    while (taken.has(id)) id = `${id}_${i + 1}`;
    taken.add(id);
    return { id, title };
  });
}

/** Where the nodes of a saved program were moved to in this browser: `{ stepId: {x, y} }`. */
function loadLayout(key) {
  try {
    const kept = key && JSON.parse(localStorage.getItem(`coach-builder:${key}`) || "{}");
    return kept && typeof kept === "object" ? kept : {};
  } catch {
    return {};
  }
}

function saveLayout(key, moved) {
  if (!key) return;
  try {
    localStorage.setItem(`coach-builder:${key}`, JSON.stringify(Object.fromEntries(moved)));
  } catch {
    /* private mode or full: the layout lasts as long as the page */
  }
}

/** What changed between two definitions, step by step: `[{ step, change, fields }]`. */
export function compare(older, newer) {
  const out = [];
  // Absent and empty are the same (the API leaves empty lists out).
  const norm = (v) => JSON.stringify(v === undefined || (Array.isArray(v) && !v.length) ? null : v);
  for (const key of ["name", "goal", "keywords", "variables", "catch_up", "milestones"]) {
    if (norm(older[key]) !== norm(newer[key])) out.push({ step: "", change: "changed", fields: [key] });
  }
  const ids = [...new Set([...older.steps.map((x) => x.id), ...newer.steps.map((x) => x.id)])];
  for (const id of ids) {
    const a = older.steps.find((x) => x.id === id);
    const b = newer.steps.find((x) => x.id === id);
    if (!a) out.push({ step: id, change: "added", fields: [] });
    else if (!b) out.push({ step: id, change: "removed", fields: [] });
    else {
      const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k] ?? null) !== JSON.stringify(b[k] ?? null));
      if (fields.length) out.push({ step: id, change: "changed", fields });
    }
  }
  return out;
}

function timingText(timing = {}) {
  if (timing.day) return `⏱ ${t("dayAt", { day: timing.day })} ${timing.at || ""}`;
  if (timing.after_minutes) return `⏱ ${timing.after_minutes} min`;
  return `⏱ ${t("immediately")}`;
}

/**
 * The builder for `def` (changed in place): `{ el, showProblems(detail), clearProblems() }`.
 * Nodes the creator moved keep their place in this browser under `layoutKey` (a saved
 * program's id), since positions are no part of the program.
 */
export function programBuilder(def, { layoutKey = null, files = [] } = {}) {
  const steps = def.steps;
  const moved = new Map(Object.entries(loadLayout(layoutKey)));
  let selected = steps[0]?.id ?? null;
  let problems = { byStep: new Map(), general: [] };
  const svg = s("svg", { class: "graph", role: "group", "aria-label": t("steps") });
  const canvas = h("div", { class: "canvas" }, svg);
  const form = h("div", { class: "inspector" });
  const general = h("ul", { class: "problems", role: "alert" });
  const addStep = h("button", { type: "button", class: "add-step" }, t("addStep"));
  addStep.addEventListener("click", () => {
    let n = steps.length + 1;
    while (steps.some((x) => x.id === `step${n}`)) n++;
    steps.push({ id: `step${n}`, message: "", timing: { after_minutes: 1440 } });
    selected = `step${n}`;
    draw();
  });
  const milestones = milestonesEditor(def);
  const el = h("div", { class: "builder", onkeydown: (ev) => {
    if (ev.key === "Enter" && ev.target.tagName === "INPUT") { ev.preventDefault(); ev.target.blur(); ev.target.focus(); }
  } }, h("p", { class: "muted" }, t("builderHelp")), general, h("div", { class: "row" }, addStep), h("div", { class: "builder-panes" }, canvas, form), milestones);

  function positions() {
    const pos = layout(steps);
    for (const [id, p] of moved) if (pos.has(id)) pos.set(id, p);
    return pos;
  }

  /** The graph and the selected step's form, both drawn again. */
  function draw() {
    graph();
    inspector();
  }

  /** The graph drawn again (the form stays, so typing in it keeps its focus). */
  function graph() {
    const pos = positions();
    clear(svg);
    svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z" }))));
    for (const e of edges(steps)) {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) continue;
      const [, px, py] = PORTS.find(([k]) => k === e.kind);
      const x1 = a.x + px, y1 = a.y + py, x2 = b.x, y2 = b.y + H / 2;
      const bend = e.to === e.from ? 60 : Math.max(40, Math.abs(x2 - x1) / 2);
      const d = `M${x1},${y1} C${x1 + bend},${y1 + (e.kind === "next" ? 0 : 40)} ${x2 - bend},${y2} ${x2},${y2}`;
      svg.append(s("g", { class: `edge ${e.kind}${e.implied ? " implied" : ""}`, "data-from": e.from, "data-to": e.to },
        s("path", { d, "marker-end": "url(#arrow)" }),
        e.label ? s("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6 }, e.label) : null));
    }
    for (const st of steps) {
      const p = pos.get(st.id);
      const errs = problems.byStep.get(st.id) || [];
      const g = s("g", {
        class: `node${st.id === selected ? " selected" : ""}${errs.length ? " invalid" : ""}`,
        "data-step": st.id, transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button",
      },
      // Named by its text (id, message, timing); the problems are its description.
      errs.length ? s("desc", {}, errs.join("\n")) : null,
      s("rect", { width: W, height: H, rx: 8 }),
      s("text", { x: 10, y: 20, class: "id" }, st.id),
      s("text", { x: 10, y: 40, class: "msg" }, (st.message || "…").slice(0, 30)),
      s("text", { x: 10, y: 60, class: "meta" }, timingText(st.timing), st.template ? " · 📄" : "", (st.buttons || []).length ? ` · ${st.buttons.length} ⏺` : "", errs.length ? ` · ⚠ ${errs.length}` : ""),
      PORTS.map(([kind, x, y]) => s("circle", { class: `port ${kind}`, "data-port": kind, cx: x, cy: y, r: 7 }, s("title", {}, t(`port_${kind}`)))));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(st.id); } });
      svg.append(g);
    }
    const w = Math.max(...[...pos.values()].map((p) => p.x + W + PAD + 60), 300);
    const ht = Math.max(...[...pos.values()].map((p) => p.y + H + PAD + 40), 200);
    svg.setAttribute("width", w);
    svg.setAttribute("height", ht);
    clear(general).append(...problems.general.map((p) => h("li", {}, p)));
  }

  function select(id) {
    selected = id;
    draw();
    form.querySelector("input, textarea")?.focus();
  }

  // Pointer work on the graph: a node is dragged to move it (or clicked to select it); a port
  // is dragged onto another node to connect them.
  let drag = null;
  const point = (ev) => {
    const r = svg.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    // A field being typed in is saved first (its change event), before the graph is redrawn.
    if (form.contains(document.activeElement)) document.activeElement.blur();
    const hit = document.elementFromPoint(ev.clientX, ev.clientY);
    const node = hit?.closest?.("g.node");
    if (!node) return;
    const id = node.dataset.step;
    const port = hit.closest("circle.port");
    const at = point(ev);
    ev.preventDefault();
    svg.setPointerCapture(ev.pointerId);
    if (port) {
      const p = positions().get(id);
      const [, px, py] = PORTS.find(([k]) => k === port.dataset.port);
      const line = s("line", { class: `wire ${port.dataset.port}`, x1: p.x + px, y1: p.y + py, x2: at.x, y2: at.y });
      svg.append(line);
      drag = { kind: "wire", from: id, port: port.dataset.port, line, start: at };
    } else {
      const p = positions().get(id);
      drag = { kind: "move", id, dx: at.x - p.x, dy: at.y - p.y, start: at, moved: false };
    }
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const at = point(ev);
    if (drag.kind === "wire") {
      drag.line.setAttribute("x2", at.x);
      drag.line.setAttribute("y2", at.y);
    } else if (drag.moved || Math.hypot(at.x - drag.start.x, at.y - drag.start.y) > 4) {
      drag.moved = true;
      moved.set(drag.id, { x: Math.max(0, at.x - drag.dx), y: Math.max(0, at.y - drag.dy) });
      const g = svg.querySelector(`g.node[data-step="${CSS.escape(drag.id)}"]`);
      g?.setAttribute("transform", `translate(${moved.get(drag.id).x},${moved.get(drag.id).y})`);
    }
  });
  svg.addEventListener("pointerup", (ev) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.kind === "wire") {
      d.line.remove();
      const at = point(ev);
      const target = document.elementFromPoint(ev.clientX, ev.clientY)?.closest?.("g.node");
      // Only a drag onto another step connects (a loop to the step itself is chosen in its form).
      if (target && target.dataset.step !== d.from && Math.hypot(at.x - d.start.x, at.y - d.start.y) > 4) {
        connect(steps, d.from, d.port, target.dataset.step);
        selected = d.from;
      }
      draw();
    } else if (d.moved) {
      saveLayout(layoutKey, moved);
      graph();
    } else select(d.id);
  });
  const cancel = () => {
    if (!drag) return;
    drag.line?.remove();
    drag = null;
    graph();
  };
  svg.addEventListener("pointercancel", cancel);
  svg.addEventListener("lostpointercapture", () => drag && setTimeout(cancel, 0));

  // The selected step's form: every field the API has.
  function inspector() {
    clear(form);
    const st = steps.find((x) => x.id === selected);
    if (!st) return form.append(h("p", { class: "muted" }, t("selectStep")));
    const others = steps.filter((x) => x.id !== st.id).map((x) => x.id);
    // Targets for the selects: every other step, and this one (a step repeated daily).
    const targets = [...others.map((x) => [x, x]), [st.id, t("thisStep", { id: st.id })]];
    const changed = () => graph();
    const on = (el, fn, ev = "change") => { el.addEventListener(ev, () => { fn(el.value); changed(); }); return el; };
    const picker = (value, choices, fn, label) => on(h("select", { "aria-label": label }, choices.map(([v, l]) => h("option", { value: v, selected: v === (value ?? "") }, l))), fn);
    const errs = problems.byStep.get(st.id) || [];

    const id = h("input", { name: "step_id", value: st.id, required: true, maxlength: 64 });
    id.addEventListener("change", () => {
      const v = id.value.trim();
      if (v === st.id) return;
      if (!validId(v) || steps.some((x) => x.id === v)) {
        id.value = st.id;
        id.setCustomValidity(t("badStepId"));
        id.reportValidity();
        id.setCustomValidity("");
        return;
      }
      const p = moved.get(st.id);
      if (p) { moved.delete(st.id); moved.set(v, p); }
      rename(steps, st.id, v);
      selected = v;
      draw();
      form.querySelector("input[name=step_id]")?.focus();
    });
    const msg = h("textarea", { name: "message", rows: 3 }, st.message || "");
    msg.addEventListener("input", () => {
      st.message = msg.value;
      const label = svg.querySelector(`g.node[data-step="${CSS.escape(st.id)}"] text.msg`);
      if (label) label.textContent = (st.message || "…").slice(0, 30);
    });
    const buttons = on(h("input", { name: "buttons", value: (st.buttons || []).map((b) => b.title).join(", ") }), (v) => {
      st.buttons = buttonsFrom(v.split(",").map((x) => x.trim()).filter(Boolean), st.buttons || []);
    });
    const timing = st.timing || {};
    const mode = h("select", { name: "timing", "aria-label": t("timing") }, [["now", t("immediately")], ["after", t("afterMinutes")], ["day", t("day")]].map(([v, l]) => h("option", { value: v }, l)));
    mode.value = timing.day ? "day" : timing.after_minutes ? "after" : "now";
    const minutes = h("input", { type: "number", name: "after_minutes", min: 1, value: timing.after_minutes || 60, "aria-label": t("afterMinutes") });
    const day = h("input", { type: "number", name: "day", min: 1, value: timing.day || 1, "aria-label": t("day") });
    const at = h("input", { type: "time", name: "at", value: timing.at || "09:00", "aria-label": t("at") });
    const setTiming = () => {
      st.timing = mode.value === "after" ? { after_minutes: Number(minutes.value) } : mode.value === "day" ? { day: Number(day.value), at: at.value } : {};
      minutes.hidden = mode.value !== "after";
      day.hidden = at.hidden = mode.value !== "day";
      changed();
    };
    [mode, minutes, day, at].forEach((x) => x.addEventListener("change", setTiming));
    minutes.hidden = mode.value !== "after";
    day.hidden = at.hidden = mode.value !== "day";

    const tpl = st.template || {};
    const tplName = h("input", { name: "template_name", value: tpl.name || "", placeholder: "check_in" });
    const tplLang = h("input", { name: "template_language", value: tpl.language || "", placeholder: "en_US" });
    const tplParams = h("textarea", { name: "template_parameters", rows: 2, placeholder: "{first_name}" }, (tpl.parameters || []).join("\n"));
    const setTemplate = () => {
      const name = tplName.value.trim();
      if (name) st.template = { name, language: tplLang.value.trim() || "en_US", parameters: tplParams.value.split("\n").map((x) => x.trim()).filter(Boolean) };
      else delete st.template;
      changed();
    };
    [tplName, tplLang, tplParams].forEach((x) => x.addEventListener("change", setTemplate));

    const next = picker(st.next, [["", t("nextListed")], ["end", t("endProgram")], ...targets], (v) => { if (v) st.next = v; else delete st.next; }, t("nextStep"));
    next.name = "next";
    const branchRows = (st.branches || []).map((b, i) => {
      const when = on(h("input", { name: `branch_on_${i}`, value: (b.on || []).join(", "), "aria-label": t("onReply") }), (v) => { b.on = v.split(",").map((x) => x.trim()).filter(Boolean); });
      const to = picker(b.goto, targets, (v) => { b.goto = v; }, t("goTo"));
      to.name = `branch_goto_${i}`;
      const drop = h("button", { type: "button", class: "danger" }, t("remove_"));
      drop.addEventListener("click", () => { st.branches.splice(i, 1); draw(); });
      return h("div", { class: "row branch", "data-branch": i }, h("span", {}, t("onReply")), when, h("span", {}, "→"), to, drop);
    });
    const addBranch = h("button", { type: "button" }, t("addBranch"));
    addBranch.addEventListener("click", () => { connect(steps, st.id, "branch", others[0] ?? st.id); draw(); });
    const quiet = h("input", { type: "number", name: "if_no_reply_after", min: 1, value: st.if_no_reply_after || "", placeholder: "1440", "aria-label": t("noReplyAfter") });
    const quietTo = picker(st.no_reply_goto, [["", t("none")], ...others.map((x) => [x, x])], (v) => {
      if (v) { st.no_reply_goto = v; st.if_no_reply_after = Number(quiet.value) || 1440; } else { delete st.no_reply_goto; delete st.if_no_reply_after; }
    }, t("thenSend"));
    quietTo.name = "no_reply_goto";
    quiet.addEventListener("change", () => { if (st.no_reply_goto) st.if_no_reply_after = Number(quiet.value) || 1440; changed(); });
    // A progress question: its answer is recorded per contact (streaks, milestones).
    const pr = st.progress || {};
    const prKey = h("input", { name: "progress_key", value: pr.key || "", placeholder: "walk" });
    const prKind = h("select", { name: "progress_kind", "aria-label": t("progressKind") }, [["", t("none")], ["yes_no", t("kindYesNo")], ["number", t("kindNumber")], ["scale", t("kindScale")]].map(([v, l]) => h("option", { value: v, selected: v === (pr.kind || "") }, l)));
    const num = (name, value) => h("input", { type: "number", name, value: value ?? "", step: "any", "aria-label": t(name) });
    const prMin = num("progress_min", pr.min), prMax = num("progress_max", pr.max), prTarget = num("progress_target", pr.target);
    const prUnit = h("input", { name: "progress_unit", value: pr.unit || "", "aria-label": t("progress_unit"), placeholder: "h" });
    const setProgress = () => {
      const key = prKey.value.trim();
      if (!prKind.value || !key) delete st.progress;
      else {
        st.progress = { key, kind: prKind.value };
        if (prKind.value !== "yes_no") {
          for (const [k, el] of [["min", prMin], ["max", prMax], ["target", prTarget]]) if (el.value !== "") st.progress[k] = Number(el.value);
        }
        if (prUnit.value.trim()) st.progress.unit = prUnit.value.trim();
      }
      changed();
    };
    [prKey, prKind, prMin, prMax, prTarget, prUnit].forEach((x) => x.addEventListener("change", setProgress));
    // A library file sent with the step, its text as the caption.
    const file = h("select", { name: "file", "aria-label": t("stepFile") }, h("option", { value: "" }, t("none")),
      files.map((f) => h("option", { value: f.id, selected: f.id === st.file }, f.name)));
    file.addEventListener("change", () => { if (file.value) st.file = file.value; else delete st.file; changed(); });
    const drop = h("button", { type: "button", class: "danger" }, t("deleteStep"));
    drop.disabled = steps.length < 2;
    drop.addEventListener("click", () => { removeStep(steps, st.id); selected = steps[0]?.id ?? null; draw(); });

    const labelled = (label, input) => field(label, input)[0];
    form.append(...[
      h("h3", {}, st.id),
      errs.length ? h("ul", { class: "problems", role: "alert" }, errs.map((e) => h("li", {}, e))) : null,
      labelled(t("stepId"), id), labelled(t("message"), msg), labelled(t("buttons"), buttons), labelled(t("stepFile"), file),
      h("div", { class: "row" }, h("span", {}, t("timing")), mode, minutes, day, at),
      h("fieldset", {}, h("legend", {}, t("fallbackTemplate")), h("p", { class: "muted small" }, t("stepTemplateHelp")),
        labelled(t("templateName"), tplName), labelled(t("templateLanguage"), tplLang), labelled(t("templateParams"), tplParams)),
      labelled(t("nextStep"), next),
      h("fieldset", {}, h("legend", {}, t("branches")), branchRows, addBranch),
      h("fieldset", {}, h("legend", {}, t("silence")), h("div", { class: "row" }, h("span", {}, t("noReplyAfter")), quiet, h("span", {}, t("thenSend")), quietTo)),
      h("fieldset", {}, h("legend", {}, t("progressQuestion")), labelled(t("progressKey"), prKey), h("div", { class: "row" }, prKind, prMin, prMax, prTarget, prUnit)),
      drop,
    ].filter(Boolean));
  }

  draw();
  return {
    el,
    /** Problems of the definition as it was sent (`ids`: its step ids then). */
    showProblems(detail, ids = steps.map((x) => x.id)) {
      problems = problemsByStep(ids, detail);
      const first = [...problems.byStep.keys()][0];
      if (first) selected = first;
      draw();
    },
    clearProblems() {
      problems = { byStep: new Map(), general: [] };
      draw();
    },
  };
}

/** The program's milestones: a message sent once when a progress key's streak (days in a row)
 * or total reaches a number. Edited in place in `def.milestones`. */
function milestonesEditor(def) {
  def.milestones ||= [];
  const rows = h("div", { class: "milestones-rows" });
  const draw = () => {
    clear(rows);
    def.milestones.forEach((m, i) => {
      const key = h("input", { name: `milestone_key_${i}`, value: m.key || "", "aria-label": t("progressKey"), placeholder: "walk" });
      const kind = h("select", { name: `milestone_kind_${i}`, "aria-label": t("milestoneWhen") }, [["streak", t("streak")], ["total", t("total")]].map(([v, l]) => h("option", { value: v, selected: (m.total !== undefined ? "total" : "streak") === v }, l)));
      const count = h("input", { type: "number", min: 1, name: `milestone_count_${i}`, value: m.streak ?? m.total ?? 7, "aria-label": t("milestoneCount") });
      const message = h("input", { name: `milestone_message_${i}`, value: m.message || "", "aria-label": t("message"), placeholder: "{streak} days in a row, {first_name}!" });
      const save = () => {
        const next = { key: key.value.trim(), message: message.value };
        next[kind.value] = Number(count.value) || 1;
        def.milestones[i] = next;
      };
      [key, kind, count, message].forEach((x) => x.addEventListener("change", save));
      const drop = h("button", { type: "button", class: "danger" }, t("remove_"));
      drop.addEventListener("click", () => { def.milestones.splice(i, 1); draw(); });
      rows.append(h("div", { class: "row milestone", "data-milestone": i }, key, kind, count, message, drop));
    });
  };
  const add = h("button", { type: "button", class: "add-milestone" }, t("addMilestone"));
  add.addEventListener("click", () => { def.milestones.push({ key: "", streak: 7, message: "" }); draw(); });
  draw();
  return h("fieldset", { class: "milestones" }, h("legend", {}, t("milestones")), h("p", { class: "muted small" }, t("milestonesHelp")), rows, add);
}
