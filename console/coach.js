// The coach's settings: persona and default language, proactive-message rules (time zone, quiet
// hours, the pause after a contact's message), business hours with the away reply, and how long
// messages are kept. One form, saved with one PATCH /v1/tenant.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, fail, toast, field } from "./ui.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LANGS = [["en", "English"], ["es", "Español"], ["pt", "Português"], ["pt-BR", "Português (Brasil)"], ["fr", "Français"], ["de", "Deutsch"], ["it", "Italiano"], ["nl", "Nederlands"]];

function zones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["UTC", "Europe/Madrid", "Europe/Berlin", "America/Sao_Paulo", "America/New_York"];
  }
}

export async function render(main, _params, { me }) {
  const tenant = await api.get("/v1/tenant");
  const admin = me.role === "owner" || me.role === "admin";
  main.append(h("h1", {}, t("coach")));
  const p = tenant.persona;
  const text = (name, value, rows) =>
    field(t(`p_${name}`), rows ? h("textarea", { name, rows }, value || "") : h("input", { name, value: value || "" }));
  const [nameF, coachName] = text("coach_name", p.coach_name);
  const [toneF, tone] = text("tone", p.tone);
  const [langF, language] = field(
    t("p_language"),
    h("select", { name: "language" }, LANGS.map(([v, l]) => h("option", { value: v, selected: (p.language || "en") === v }, l))),
  );
  const [greetF, greeting] = text("greeting", p.greeting, 2);
  const [styleF, style] = text("coaching_style", p.coaching_style, 3);
  const [boundF, boundaries] = text("boundaries", p.boundaries, 3);
  const [helpF, help] = text("help_resources", p.help_resources, 2);

  const zoneList = h("datalist", { id: "zones" }, zones().map((z) => h("option", { value: z })));
  const o = tenant.outreach;
  const [tzF, timeZone] = field(t("timeZone"), h("input", { name: "time_zone", list: "zones", value: o.time_zone, required: true }));
  const [qsF, quietStart] = field(t("quietFrom"), h("input", { type: "time", name: "quiet_start", value: o.quiet_hours.start }));
  const [qeF, quietEnd] = field(t("quietTo"), h("input", { type: "time", name: "quiet_end", value: o.quiet_hours.end }));
  const [pauseF, pause] = field(t("pauseMinutes"), h("input", { type: "number", name: "pause_minutes", min: 0, max: 1440, value: o.pause_minutes }));

  const bh = tenant.business_hours || { time_zone: o.time_zone, open: {}, away_reply: "" };
  const days = DAYS.map((d) => {
    const [from, to] = (bh.open[d] || "09:00-17:00").split("-");
    const on = h("input", { type: "checkbox", name: `open_${d}`, checked: Boolean(bh.open[d]) });
    const start = h("input", { type: "time", name: `from_${d}`, value: from, "aria-label": `${t(`day_${d}`)} ${t("opens")}` });
    const end = h("input", { type: "time", name: `to_${d}`, value: to, "aria-label": `${t(`day_${d}`)} ${t("closes")}` });
    return { d, on, start, end, row: h("div", { class: "day row" }, h("label", { class: "check" }, on, " ", t(`day_${d}`)), start, "–", end) };
  });
  const [bhTzF, bhTz] = field(t("timeZone"), h("input", { name: "hours_time_zone", list: "zones", value: bh.time_zone }));
  const [awayF, away] = field(t("awayReply"), h("textarea", { name: "away_reply", rows: 2, placeholder: t("awayPlaceholder") }, bh.away_reply || ""));
  const [keepF, keep] = field(t("retentionDays"), h("input", { type: "number", name: "retention_days", min: 0, max: 3650, value: tenant.retention_days ?? 0 }));

  const save = h("button", { type: "submit", class: "primary", disabled: !admin }, t("save"));
  const form = h(
    "form",
    { class: "coach-settings" },
    zoneList,
    h("section", { class: "card" }, h("h2", {}, t("persona")), nameF, toneF, langF, greetF, styleF, boundF, helpF),
    h("section", { class: "card" }, h("h2", {}, t("outreachTitle")), h("p", { class: "muted" }, t("outreachHelp")), tzF, h("div", { class: "row" }, qsF, qeF), pauseF),
    h("section", { class: "card hours" }, h("h2", {}, t("businessHours")), h("p", { class: "muted" }, t("businessHelp")), bhTzF, days.map((x) => x.row), awayF),
    h("section", { class: "card" }, h("h2", {}, t("retention")), keepF),
    h("div", { class: "row" }, save),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const open = Object.fromEntries(days.filter((x) => x.on.checked).map((x) => [x.d, `${x.start.value}-${x.end.value}`]));
    const hoursOn = Object.keys(open).length > 0 || away.value.trim();
    const body = {
      persona: {
        ...p,
        coach_name: coachName.value.trim(),
        tone: tone.value.trim(),
        language: language.value,
        greeting: greeting.value.trim(),
        coaching_style: style.value.trim(),
        boundaries: boundaries.value.trim(),
        help_resources: help.value.trim(),
      },
      outreach: { ...o, time_zone: timeZone.value.trim(), quiet_hours: { start: quietStart.value, end: quietEnd.value }, pause_minutes: Number(pause.value) },
      business_hours: hoursOn ? { time_zone: bhTz.value.trim() || timeZone.value.trim(), open, away_reply: away.value.trim() } : null,
      retention_days: Number(keep.value),
    };
    try {
      const saved = await api.call("PATCH", "/v1/tenant", body);
      Object.assign(tenant, saved);
      toast(t("saved"));
    } catch (e) {
      fail(e);
    }
  });
  main.append(form);
}
