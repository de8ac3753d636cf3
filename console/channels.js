// The Channels screen: each channel with its health (a token that stopped working, messages
// that keep dying: from GET /v1/channels/health), editing a channel (name, on/off, its
// provider settings, WhatsApp's fallback template; secrets stay masked and are kept unless
// replaced), guided WhatsApp and Telegram connect forms, then the member's notification
// preferences and the webhook card.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, field, channelIcon, channelName, when } from "./ui.js";
import { preferencesCard, notifyCard } from "./settings.js";

const MASK = "********";

export async function render(main, _params, { me }) {
  const admin = me.role === "owner" || me.role === "admin";
  main.append(h("h1", {}, t("channels")));
  const alerts = h("div", { class: "health-alerts", "aria-live": "polite" });
  const list = h("ul", { class: "channels" });
  const editor = h("div", { class: "channel-editor" });
  main.append(alerts, h("section", { class: "card" }, list), editor);

  async function load() {
    const [channels, health] = await Promise.all([api.get("/v1/channels"), api.get("/v1/channels/health")]);
    const byId = new Map(health.map((x) => [x.channel_id, x]));
    clear(alerts);
    for (const x of health.filter((x) => x.status !== "ok")) {
      const c = channels.find((c) => c.id === x.channel_id);
      alerts.append(
        h("div", { class: `card alert ${x.status}`, role: "alert", "data-health": x.channel_id },
          h("strong", {}, "⚠ ", x.name, ": "),
          x.problems.map((p) => h("span", {}, t(p.code === "token" ? "healthToken" : "healthDead", { n: x.dead_letters }), " ")),
          x.problems[0]?.detail ? h("div", { class: "muted small" }, t("healthLatest"), " ", h("code", {}, x.problems[0].detail), " · ", when(x.problems[0].at)) : null,
          h("div", { class: "row" },
            admin && c ? h("button", { type: "button", class: "primary", onclick: () => edit(c) }, t("healthFix")) : null,
            h("a", { href: "#/activity" }, t("healthDeadLetters")))),
      );
    }
    clear(list);
    for (const c of channels) {
      const x = byId.get(c.id);
      const status = x?.status ?? "ok";
      list.append(
        h(
          "li",
          { "data-channel": c.id, "data-health-status": status },
          channelIcon(c.kind),
          h("strong", {}, c.name),
          h("span", { class: "muted" }, ` ${channelName(c.kind)} · ${c.enabled ? t("enabled") : t("disabled")} `),
          h("span", { class: `badge health ${status}` }, t(`health_${status}`)),
          admin ? h("button", { type: "button", class: "edit", onclick: () => edit(c) }, t("edit")) : null,
          c.webhook_url ? h("div", { class: "muted small" }, `${t("webhookUrl")}: `, h("code", {}, c.webhook_url)) : null,
        ),
      );
    }
  }

  // One form for any channel: the settings each kind has, then the rest as JSON (plugins).
  function edit(c) {
    const cfg = structuredClone(c.config || {});
    const [nameF, name] = field(t("name"), h("input", { value: c.name, required: true, name: "name" }));
    const enabled = h("input", { type: "checkbox", name: "enabled", checked: c.enabled });
    const inputs = [];
    const text = (key, label, secret = false) => {
      // A secret is never shown (the API masks it): left empty, it is kept as it is.
      const input = h("input", { name: key, value: secret ? "" : cfg[key] ?? "", type: secret ? "password" : "text", autocomplete: "off" });
      if (secret) input.placeholder = t("keepSecret");
      inputs.push([key, input]);
      return field(label, input)[0];
    };
    const fields = [];
    let extra = null;
    if (c.kind === "whatsapp") {
      const tpl = cfg.fallback_template || {};
      const tplName = h("input", { name: "fallback_name", value: tpl.name ?? "", placeholder: "check_in" });
      const tplLang = h("input", { name: "fallback_language", value: tpl.language ?? "", placeholder: "en_US" });
      fields.push(
        text("phone_number_id", t("waPhone")), text("access_token", t("waToken"), true),
        text("app_secret", t("waSecret"), true), text("verify_token", t("waVerify"), true),
        h("fieldset", { class: "template" }, h("legend", {}, t("fallbackTemplate")), h("p", { class: "muted small" }, t("fallbackHelp")),
          field(t("templateName"), tplName)[0], field(t("templateLanguage"), tplLang)[0]),
      );
      extra = (out) => {
        const n = tplName.value.trim();
        if (n) out.fallback_template = { name: n, language: tplLang.value.trim() || "en_US" };
        else delete out.fallback_template;
      };
    } else if (c.kind === "telegram") {
      const mode = h("select", { name: "mode" }, ["webhook", "polling"].map((m) => h("option", { value: m, selected: (cfg.mode || "webhook") === m }, t(m))));
      fields.push(text("bot_token", t("tgToken"), true), field(t("tgMode"), mode)[0]);
      extra = (out) => { out.mode = mode.value; };
    } else if (c.kind === "web_widget") {
      fields.push(h("p", {}, h("a", { href: "#/widget" }, t("widgetInDesigner"))));
    } else {
      const json = h("textarea", { name: "config", rows: 8 }, JSON.stringify(cfg, null, 2));
      fields.push(field(t("configJson"), json)[0]);
      extra = (out) => Object.assign(out, JSON.parse(json.value || "{}"));
    }
    const form = h("form", { class: "card", "data-edit": c.id },
      h("h2", {}, channelIcon(c.kind), " ", t("editChannel", { name: c.name })),
      nameF, h("label", { class: "check" }, enabled, " ", t("channelEnabled")), fields,
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, t("save")),
        h("button", { type: "button", onclick: () => clear(editor) }, t("cancel"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { name: name.value.trim(), enabled: enabled.checked };
      if (c.kind !== "web_widget") {
        let config = structuredClone(cfg);
        for (const [key, input] of inputs) {
          const v = input.value.trim();
          // An untouched secret is sent masked: the gateway keeps its value.
          config[key] = input.type === "password" && v === "" ? MASK : v;
        }
        try {
          if (extra) extra(config);
        } catch (e) {
          return fail(e);
        }
        body.config = config;
      }
      try {
        const saved = await api.call("PATCH", `/v1/channels/${c.id}`, body);
        toast(t("saved"));
        clear(editor);
        await load();
        list.querySelector(`[data-channel="${saved.id}"]`)?.focus?.();
      } catch (e) {
        fail(e);
      }
    });
    clear(editor).append(form);
    name.focus();
  }
  await load();

  const connectForm = (kind, help, fields, build) => {
    const [nameF, name] = field(t("name"), h("input", { value: channelName(kind), required: true }));
    const form = h("form", { class: "card", "data-kind": kind }, h("h2", {}, channelIcon(kind), " ", channelName(kind)), h("p", { class: "muted" }, help), nameF, fields.map((f) => f[0]), h("button", { type: "submit", class: "primary" }, t("connect")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const c = await api.post("/v1/channels", { kind, name: name.value.trim(), config: build() });
        toast(t("connected", { name: c.name }));
        form.reset();
        await load();
      } catch (e) {
        fail(e);
      }
    });
    return form;
  };
  const wa = [
    field(t("waPhone"), h("input", { required: true, autocomplete: "off" })),
    field(t("waToken"), h("input", { type: "password", required: true, autocomplete: "off" })),
    field(t("waSecret"), h("input", { type: "password", required: true, autocomplete: "off" })),
    field(t("waVerify"), h("input", { required: true, autocomplete: "off" })),
  ];
  const tgMode = h("select", {}, [h("option", { value: "webhook" }, t("webhook")), h("option", { value: "polling" }, t("polling"))]);
  const tg = [field(t("tgToken"), h("input", { type: "password", required: true, autocomplete: "off" })), field(t("tgMode"), tgMode)];
  if (admin) {
    main.append(
      h(
        "div",
        { class: "grid2" },
        connectForm("whatsapp", t("waHelp"), wa, () => ({ phone_number_id: wa[0][1].value.trim(), access_token: wa[1][1].value.trim(), app_secret: wa[2][1].value.trim(), verify_token: wa[3][1].value.trim() })),
        connectForm("telegram", t("tgHelp"), tg, () => ({ bot_token: tg[0][1].value.trim(), mode: tgMode.value })),
      ),
    );
  }
  main.append(await preferencesCard());
  if (admin) main.append(await notifyCard());
}
