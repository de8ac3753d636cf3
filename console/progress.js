// A contact's progress in the conversation view: per program and key, the streak and a chart
// of their answers by day (yes/no as stacked bars, numbers and scales as a line).

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear } from "./ui.js";
import { stackedBars, lines } from "./charts.js";

export function progressBox() {
  const body = h("div", { class: "progress-items" });
  const box = h("details", { class: "progress-box" }, h("summary", {}, t("progress")), body);
  async function load(contactId) {
    const p = await api.get(`/v1/contacts/${contactId}/progress`);
    clear(body);
    box.querySelector("summary").textContent = `${t("progress")} (${p.items.length})`;
    if (!p.items.length) body.append(h("p", { class: "muted" }, t("noProgress")));
    for (const item of p.items) {
      const days = [...new Set(item.entries.map((e) => e.local_date))].sort();
      const title = `${item.program} · ${item.key}: ${t("streakOf", { n: item.streak, best: item.best_streak })}`;
      let chart;
      if (item.kind === "yes_no") {
        const count = (yes) => days.map((d) => item.entries.filter((e) => e.local_date === d && (e.value >= 1) === yes).length);
        chart = stackedBars(title, days, [{ name: t("yes"), values: count(true) }, { name: t("no"), values: count(false) }]);
      } else {
        const value = (d) => {
          const e = item.entries.filter((x) => x.local_date === d).pop();
          return e ? e.value : null;
        };
        chart = lines(title, days, [{ name: item.key, values: days.map(value) }], item.unit ? ` ${item.unit}` : "");
      }
      body.append(h("section", { class: "progress-item", "data-key": item.key, "data-streak": String(item.streak) }, chart));
    }
    for (const m of p.milestones) body.append(h("p", { class: "milestone" }, `🏅 ${m.milestone}`));
  }
  return { box, load };
}
