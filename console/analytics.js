// Analytics as charts: messages per day per channel, answer time, questions handed to a
// person, and each program's funnel.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, when, channelName } from "./ui.js";
import { stackedBars, lines, funnel } from "./charts.js";

const REASONS = { asked_for_human: "askedHuman", low_confidence: "lowConfidence", quota_reached: "quotaReached", crisis: "crisis" };
const reasonLabel = (reason) => t(REASONS[reason] || "lowConfidence");

export async function render(main) {
  const period = h("select", { "aria-label": t("period") }, [7, 30, 90].map((n) => h("option", { value: n, selected: n === 30 }, t("days", { n }))));
  const body = h("div", { class: "charts" });
  main.append(h("div", { class: "row" }, h("h1", {}, t("analytics")), h("span", { class: "spacer" }), period), body);
  period.addEventListener("change", () => load().catch(fail));
  let loading = 0;

  async function load() {
    const mine = ++loading;
    const a = await api.get(`/v1/analytics?days=${period.value}`);
    if (mine !== loading) return;
    clear(body);
    const name = (id) => {
      const c = a.channels.find((x) => x.id === id);
      return c ? `${c.name} (${channelName(c.kind)})` : id.slice(0, 8);
    };
    const ids = [...new Set(a.messages.map((m) => m.channel_id))];
    const series = ids.map((id) => ({
      name: name(id),
      values: a.days.map((d) => a.messages.filter((m) => m.day === d && m.channel_id === id).reduce((s, m) => s + m.count, 0)),
    }));
    body.append(h("section", { class: "card", "data-chart": "messages" }, a.messages.length ? stackedBars(t("messagesPerDay"), a.days, series) : h("p", { class: "empty" }, t("noData"))));

    const lat = (key) => a.days.map((d) => {
      const row = a.latency.find((l) => l.day === d);
      return row ? Math.round(row[key] / 100) / 10 : null;
    });
    body.append(
      h(
        "section",
        { class: "card", "data-chart": "latency" },
        a.latency.length ? lines(t("latency"), a.days, [{ name: t("p50"), values: lat("p50_ms") }, { name: t("p95"), values: lat("p95_ms") }], "s") : h("p", { class: "empty" }, t("noData")),
      ),
    );

    const tokens = (key) => a.days.map((d) => (a.usage.find((x) => x.day === d) || {})[key] || 0);
    body.append(
      h(
        "section",
        { class: "card", "data-chart": "usage" },
        a.usage.length
          ? stackedBars(t("tokensPerDay"), a.days, [
              { name: t("promptTokens"), values: tokens("prompt_tokens") },
              { name: t("cachedTokens"), values: tokens("cached_tokens") },
              { name: t("completionTokens"), values: tokens("completion_tokens") },
            ])
          : h("p", { class: "empty" }, t("noData")),
      ),
    );

    const u = a.unanswered;
    body.append(
      h(
        "section",
        { class: "card", "data-chart": "unanswered" },
        funnel(t("unanswered"), [
          { label: t("lowConfidence"), value: u.low_confidence },
          { label: t("askedHuman"), value: u.asked_for_human },
          { label: t("quotaReached"), value: u.quota_reached },
          { label: t("crisis"), value: u.crisis },
        ]),
        h(
          "ul",
          { class: "questions" },
          u.recent.map((q) =>
            h("li", {}, h("a", { href: `#/inbox/${q.conversation_id}` }, q.question), h("span", { class: "muted" }, ` · ${reasonLabel(q.reason)} · ${when(q.created_at)}`)),
          ),
        ),
      ),
    );

    // Feedback on answers: helpful against unhelpful, and the unhelpful ones with their question.
    const fb = a.feedback;
    body.append(
      h(
        "section",
        { class: "card", "data-chart": "feedback" },
        funnel(t("feedback"), [
          { label: t("helpfulN"), value: fb.helpful },
          { label: t("unhelpfulN"), value: fb.unhelpful },
          { label: t("otherReactions"), value: fb.other },
        ]),
        h(
          "ul",
          { class: "unhelpful" },
          fb.recent.map((f) =>
            h(
              "li",
              {},
              h("a", { href: `#/inbox/${f.conversation_id}` }, f.question || t("noQuestion")),
              h("span", { class: "muted" }, ` → ${f.answer.slice(0, 160)} · ${f.emoji} · ${when(f.created_at)}`),
            ),
          ),
        ),
      ),
    );

    // Ratings of resolved widget conversations (CSAT): how many gave each score, then the latest.
    const r = a.ratings;
    const score = r.responses ? ` · ${t("avgRating")} ${r.average} · ${r.satisfied_pct}% ${t("satisfied")}` : "";
    body.append(
      h(
        "section",
        { class: "card", "data-chart": "ratings" },
        funnel(`${t("ratings")} (${r.responses})${score}`, r.scores.map((n, i) => ({ label: `${"★".repeat(i + 1)} ${i + 1}/5`, value: n }))),
        r.responses
          ? h(
              "ul",
              { class: "ratings" },
              r.recent.map((x) =>
                h("li", {}, h("a", { href: `#/inbox/${x.conversation_id}` }, `${x.rating}/5`), h("span", {}, x.comment ? ` “${x.comment}”` : ""), h("span", { class: "muted" }, ` · ${when(x.updated_at)}`)),
              ),
            )
          : h("p", { class: "muted" }, t("noRatings")),
      ),
    );

    for (const p of await api.get("/v1/programs")) {
      if (p.status === "archived") continue;
      const stats = await api.get(`/v1/programs/${p.id}/analytics`);
      if (mine !== loading) return;
      // How far enrollments got (each step reached, then completed), then per step what was
      // sent and replied to.
      const rows = [{ label: t("enrolled"), value: stats.enrolled }];
      for (const f of stats.funnel) {
        rows.push({ label: f.stage === "completed" ? t("completedStage") : `${f.stage}: ${t("reached")}`, value: f.reached });
      }
      for (const s of stats.steps) {
        rows.push({ label: `${s.step_id}: ${t("sentN")}`, value: s.sent });
        rows.push({ label: `${s.step_id}: ${t("repliedN")}`, value: s.replied });
      }
      body.append(h("section", { class: "card", "data-chart": "funnel" }, funnel(`${t("funnel")}: ${p.definition.name}`, rows)));
      for (const k of stats.progress) {
        const streaks = k.streaks.map((b) => ({ label: t("streakDays", { days: b.days }), value: b.contacts }));
        const title = `${t("streaks")}: ${p.definition.name} · ${k.key} (${k.answers} ${t("answersN")}, ${k.milestones} ${t("milestonesN")})`;
        body.append(h("section", { class: "card", "data-chart": "streaks" }, funnel(title, streaks)));
      }
    }
  }
  await load();
}
