// Coaching programs: the list, a form-based step editor (message, buttons, timing), and
// enrolling a contact. Branches and templates written through the API are kept as they are.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, field } from "./ui.js";

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

  function stepForm(step) {
    const [idF, id] = field(t("stepId"), h("input", { value: step.id || "", required: true, pattern: "[a-z0-9_-]+" }));
    const [msgF, msg] = field(t("message"), h("textarea", { rows: 2, required: true }, step.message || ""));
    const [btnF, btn] = field(t("buttons"), h("input", { value: (step.buttons || []).map((b) => b.title).join(", ") }));
    const timing = step.timing || {};
    const mode = h("select", { "aria-label": t("timing") }, [["now", t("immediately")], ["after", t("afterMinutes")], ["day", t("day")]].map(([v, l]) => h("option", { value: v }, l)));
    mode.value = timing.day ? "day" : timing.after_minutes ? "after" : "now";
    const minutes = h("input", { type: "number", min: 1, value: timing.after_minutes || 60, "aria-label": t("afterMinutes") });
    const day = h("input", { type: "number", min: 1, value: timing.day || 1, "aria-label": t("day") });
    const at = h("input", { type: "time", value: timing.at || "09:00", "aria-label": t("at") });
    const remove = h("button", { type: "button", class: "danger" }, t("remove_"));
    const sync = () => {
      minutes.hidden = mode.value !== "after";
      day.hidden = at.hidden = mode.value !== "day";
    };
    mode.addEventListener("change", sync);
    sync();
    const el = h("fieldset", { class: "step" }, h("legend", {}, step.id || t("addStep")), idF, msgF, btnF, h("div", { class: "row" }, h("span", {}, t("timing")), mode, minutes, day, at, h("span", { class: "spacer" }), remove));
    remove.addEventListener("click", () => el.remove());
    el.read = () => {
      const titles = btn.value.split(",").map((x) => x.trim()).filter(Boolean);
      const old = step.buttons || [];
      const out = {
        ...step,
        id: id.value.trim(),
        message: msg.value,
        buttons: titles.map((title, i) => ({ id: (old.find((b) => b.title === title) || {}).id || title.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 40) || `b${i}`, title })),
      };
      out.timing = mode.value === "after" ? { after_minutes: Number(minutes.value) } : mode.value === "day" ? { day: Number(day.value), at: at.value } : {};
      return out;
    };
    return el;
  }

  async function edit(p) {
    clear(editor);
    const def = p ? p.definition : { name: "", goal: "", keywords: [], steps: [{ id: "welcome", message: "Hi {first_name}!" }] };
    const [nameF, name] = field(t("name"), h("input", { value: def.name, required: true }));
    const [goalF, goal] = field(t("goal"), h("input", { value: def.goal || "" }));
    const [kwF, kw] = field(t("keywords"), h("input", { value: (def.keywords || []).join(", ") }));
    const steps = h("div", { class: "steps" }, def.steps.map(stepForm));
    const addStep = h("button", { type: "button" }, t("addStep"));
    addStep.addEventListener("click", () => steps.append(stepForm({ id: `step${steps.children.length + 1}`, message: "", timing: { after_minutes: 1440 } })));
    const form = h("form", { class: "card", "aria-label": def.name || t("newProgram") }, h("h2", {}, def.name || t("newProgram")), nameF, goalF, kwF, h("h3", {}, t("steps")), steps, addStep, h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, p ? t("save") : t("create"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {
        ...def,
        name: name.value.trim(),
        goal: goal.value.trim(),
        keywords: kw.value.split(",").map((x) => x.trim()).filter(Boolean),
        steps: [...steps.children].map((s) => s.read()),
      };
      try {
        p = p ? await api.call("PUT", `/v1/programs/${p.id}`, body) : await api.post("/v1/programs", body);
        toast(t("saved"));
        await load();
        await edit(p);
      } catch (e) {
        fail(e);
      }
    });
    editor.append(form);
    if (p) editor.append(await enrollCard(p));
  }

  await load();
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
