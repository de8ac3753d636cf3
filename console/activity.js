// Activity: deliveries that failed for good (dead letters), each with a retry, and the audit log
// (who did what). Owners and admins.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, when, channelIcon } from "./ui.js";

export async function render(main, _params, { me }) {
  main.append(h("h1", {}, t("activity")));
  if (!(me.role === "owner" || me.role === "admin")) {
    main.append(h("p", { class: "muted" }, t("adminsOnly")));
    return;
  }
  const dead = h("tbody");
  const audit = h("tbody");
  main.append(
    h("section", { class: "card" }, h("h2", {}, t("deadLetters")), h("p", { class: "muted" }, t("deadHelp")),
      h("table", { class: "dead" }, h("thead", {}, h("tr", {}, [t("when"), t("channel"), t("lastError"), t("attempt"), ""].map((x) => h("th", { scope: "col" }, x)))), dead)),
    h("section", { class: "card" }, h("h2", {}, t("auditLog")),
      h("table", { class: "audit" }, h("thead", {}, h("tr", {}, [t("when"), t("who"), t("action"), t("resource")].map((x) => h("th", { scope: "col" }, x)))), audit)),
  );

  async function loadDead() {
    const rows = await api.get("/v1/outbox?state=dead&limit=100");
    clear(dead).append(
      ...(rows.length
        ? rows.map((r) => {
            const retry = h("button", { type: "button", class: "retry" }, t("retry"));
            retry.addEventListener("click", async () => {
              retry.disabled = true;
              try {
                await api.post(`/v1/outbox/${r.id}/retry`);
                toast(t("retrying"));
                await Promise.all([loadDead(), loadAudit()]);
              } catch (e) {
                retry.disabled = false;
                fail(e);
              }
            });
            return h("tr", { "data-outbox": r.id },
              h("td", {}, when(r.updated_at)),
              h("td", {}, channelIcon(r.kind)),
              h("td", { class: "error" }, r.last_error || ""),
              h("td", {}, String(r.attempts)),
              h("td", {}, h("a", { href: `#/inbox/${r.conversation_id}` }, t("openConv")), " ", retry));
          })
        : [h("tr", { class: "empty" }, h("td", { colspan: 5, class: "muted" }, t("noDeadLetters")))]),
    );
  }

  async function loadAudit() {
    const rows = await api.get("/v1/audit-log?limit=100");
    clear(audit).append(
      ...rows.map((r) =>
        h("tr", { "data-action": r.action },
          h("td", {}, when(r.created_at)),
          h("td", {}, r.actor),
          h("td", {}, h("code", {}, r.action)),
          h("td", {}, r.resource_type, r.resource_id ? ` ${r.resource_id.slice(0, 8)}` : ""))),
    );
  }

  await Promise.all([loadDead(), loadAudit()]).catch(fail);
  return { onEvent: (name) => name === "delivery" && loadDead().catch(fail) };
}
