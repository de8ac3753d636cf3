// Coaching programs: the list, the visual builder (builder.js: steps as a graph, every field of
// a step, validation problems on their node), comparing versions, and enrolling a contact.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, field } from "./ui.js";
import { programBuilder, compare } from "./builder.js";

export async function render(main) {
  main.append(h("h1", {}, t("programs")));
  const list = h("ul", { class: "programs" });
  const editor = h("div");
  const add = h("button", { type: "button", class: "primary" }, t("newProgram"));
  main.append(h("section", { class: "card" }, list, add), editor);
  add.addEventListener("click", () => edit(null).catch(fail));

  async function load() {
    clear(list);
    const programs = await api.get("/v1/programs");
    if (!programs.length) list.append(h("li", { class: "empty" }, t("noPrograms")));
    for (const p of programs) {
      const open = h("button", { type: "button" }, t("edit"));
      open.addEventListener("click", () => edit(p).catch(fail));
      list.append(h("li", { "data-program": p.id }, h("strong", {}, p.definition.name), h("span", { class: `badge ${p.status}` }, t(p.status)), h("span", { class: "muted" }, ` v${p.version} · ${p.definition.steps.length} ${t("steps").toLowerCase()}`), " ", open));
    }
  }

  async function edit(p) {
    clear(editor);
    // Edited in place by the builder; saved as a whole (the API keeps every version).
    const def = structuredClone(p ? p.definition : { name: "", goal: "", keywords: [], steps: [{ id: "welcome", message: "Hi {first_name}!" }] });
    const [nameF, name] = field(t("name"), h("input", { name: "program_name", value: def.name, required: true }));
    const [goalF, goal] = field(t("goal"), h("input", { name: "goal", value: def.goal || "" }));
    const [kwF, kw] = field(t("keywords"), h("input", { name: "keywords", value: (def.keywords || []).join(", ") }));
    // Program-wide settings: custom variables (name=default, one per line) and overdue steps.
    const vars = Object.entries(def.variables || {}).map(([k, v]) => `${k}=${v}`).join("\n");
    const [varsF, varsBox] = field(t("variablesHelp"), h("textarea", { name: "variables", rows: 3 }, vars));
    const catchUp = def.catch_up || {};
    const [tolF, tolerance] = field(t("tolerance"), h("input", { name: "tolerance_minutes", type: "number", min: 0, value: catchUp.tolerance_minutes ?? 180 }));
    const [polF, policy] = field(t("overdue"), h("select", { name: "catch_up_policy" },
      ["skip", "delay"].map((v) => h("option", { value: v, selected: (catchUp.policy || "skip") === v }, t(`policy_${v}`)))));
    const settings = h("details", { class: "program-settings" }, h("summary", {}, t("programSettings")), varsF, h("div", { class: "row" }, tolF, polF));
    // The library's files a step may send (a viewer may not list them: then none).
    const files = await api.get("/v1/files").catch(() => []);
    const builder = programBuilder(def, { layoutKey: p?.id, files });
    const form = h("form", { class: "card program-editor", "aria-label": def.name || t("newProgram") }, h("h2", {}, def.name || t("newProgram")), nameF, goalF, kwF, settings, h("h3", {}, t("steps")), builder.el, h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, p ? t("save") : t("create"))));
    form.noValidate = true; // the API checks the whole definition, problems go on their steps
    const save = form.querySelector("button[type=submit]");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (save.disabled) return;
      save.disabled = true;
      const ids = def.steps.map((x) => x.id);
      def.name = name.value.trim();
      def.goal = goal.value.trim();
      def.keywords = kw.value.split(",").map((x) => x.trim()).filter(Boolean);
      def.variables = Object.fromEntries(varsBox.value.split("\n").map((l) => l.trim()).filter(Boolean)
        .map((l) => { const at = l.indexOf("="); return at < 0 ? [l, ""] : [l.slice(0, at).trim(), l.slice(at + 1).trim()]; }));
      def.catch_up = { tolerance_minutes: Number(tolerance.value || 0), policy: policy.value };
      try {
        p = p ? await api.call("PUT", `/v1/programs/${p.id}`, def) : await api.post("/v1/programs", def);
        await load();
        await edit(p);
        toast(t("saved"));
      } catch (e) {
        save.disabled = false;
        // Problems naming a step are shown on its node.
        if (e.status === 422) builder.showProblems(e.message, ids);
        fail(e);
      }
    });
    editor.append(form);
    if (p && p.version > 1) editor.append(versionsCard(p));
    if (p) editor.append(await enrollCard(p));
  }

  await load();
}

/** Any earlier version beside the current one, step by step. */
function versionsCard(p) {
  const pick = h("select", { name: "version", "aria-label": t("compareWith") }, Array.from({ length: p.version - 1 }, (_, i) => p.version - 1 - i).map((v) => h("option", { value: v }, `v${v}`)));
  const out = h("tbody");
  const show = async () => {
    try {
      const older = await api.get(`/v1/programs/${p.id}/versions/${pick.value}`);
      const diff = compare(older, p.definition);
      clear(out).append(...(diff.length
        ? diff.map((d) => h("tr", { "data-change": d.change, "data-step": d.step }, h("td", {}, d.step || t("program")), h("td", {}, t(`step_${d.change}`)), h("td", {}, d.fields.join(", "))))
        : [h("tr", {}, h("td", { colspan: 3, class: "muted" }, t("noChanges")))]));
    } catch (e) {
      fail(e);
    }
  };
  pick.addEventListener("change", show);
  show();
  return h("section", { class: "card versions" }, h("h2", {}, t("versions")), h("div", { class: "row" }, h("span", {}, t("compareWith")), pick, h("span", {}, `→ v${p.version}`)),
    h("table", {}, h("thead", {}, h("tr", {}, [t("stepId"), t("change"), t("fields")].map((x) => h("th", { scope: "col" }, x)))), out));
}

async function enrollCard(p) {
  const contacts = (await api.get("/v1/contacts?limit=200")).items;
  const [whoF, who] = field(t("contact"), h("select", {}, contacts.map((c) => h("option", { value: c.id }, c.display_name || (c.identities[0] || {}).external_id || c.id.slice(0, 8)))));
  const form = h("form", { class: "card" }, h("h2", {}, t("enroll")), whoF, h("button", { type: "submit", class: "primary" }, t("enroll")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api.post(`/v1/programs/${p.id}/enrollments`, { contact_id: who.value });
      toast(`${t("enrolled")}: ${r.enrolled}`);
    } catch (e) {
      fail(e);
    }
  });
  return form;
}
