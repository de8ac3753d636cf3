// Settings screens: the widget designer (live preview, the copy-paste snippet), the member's
// notifications and the webhook (events, deliveries), shown on the Channels screen
// (channels.js), and the team (members, invitations, API keys).

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, toast, field, copy, when } from "./ui.js";

const ROLES = ["owner", "admin", "editor", "viewer"];

export async function widget(main) {
  main.append(h("h1", {}, t("designer")));
  const channels = (await api.get("/v1/channels")).filter((c) => c.kind === "web_widget");
  const picker = h("select", {}, channels.map((c) => h("option", { value: c.id }, c.name)));
  const create = h("button", { type: "button" }, t("newWidget"));
  const body = h("div", { class: "designer" });
  main.append(h("div", { class: "row" }, field(t("widgetChannel"), picker)[0], create), body);
  create.addEventListener("click", async () => {
    const name = prompt(t("name"), "Website");
    if (!name) return;
    try {
      const c = await api.post("/v1/channels", { kind: "web_widget", name, config: { title: name } });
      channels.push(c);
      picker.append(h("option", { value: c.id }, c.name));
      picker.value = c.id;
      draw();
    } catch (e) {
      fail(e);
    }
  });
  picker.addEventListener("change", draw);

  function draw() {
    clear(body);
    const c = channels.find((x) => x.id === picker.value);
    if (!c) return;
    const cfg = { ...c.config };
    const [titleF, title] = field(t("title"), h("input", { value: cfg.title || "" }));
    const [greetF, greeting] = field(t("greeting"), h("textarea", { rows: 2 }, cfg.greeting || ""));
    const [startF, startersBox] = field(t("starters"), h("textarea", { rows: 3, name: "starters" }, (cfg.starters || []).join("\n")));
    const [colorF, color] = field(t("color"), h("input", { type: "color", value: cfg.color || "#3b5bdb" }));
    const [posF, position] = field(
      t("position"),
      h("select", {}, ["right", "left"].map((p) => h("option", { value: p, selected: (cfg.position || "right") === p }, t(p)))),
    );
    const [langF, language] = field(
      t("widgetLanguage"),
      h("select", {}, [["", t("browser")], ["en", "English"], ["es", "Español"]].map(([v, l]) => h("option", { value: v, selected: (cfg.language || "") === v }, l))),
    );
    const [origF, origins] = field(t("origins"), h("textarea", { rows: 3 }, (cfg.allowed_origins || []).join("\n")));
    const uploads = h("input", { type: "checkbox", name: "uploads", checked: cfg.uploads !== false });
    const uploadsF = h("label", { class: "check" }, uploads, " ", t("widgetUploads"));
    // The pre-chat form (name, e-mail, consent) and the rating asked when a conversation is resolved.
    const pre = cfg.prechat || null;
    const preOn = h("input", { type: "checkbox", name: "prechat", checked: !!pre });
    const use = (name, v) =>
      field(t(name === "email" ? "prechatEmail" : "prechatName"), h("select", { name: `prechat-${name}` },
        ["required", "optional", "off"].map((o) => h("option", { value: o, selected: (v || "required") === o }, t(`use_${o}`)))));
    const [nameF, nameUse] = use("name", pre?.name);
    const [emailF, emailUse] = use("email", pre?.email);
    const [preMsgF, preMsg] = field(t("prechatMessage"), h("textarea", { rows: 2, name: "prechat-message", maxlength: 300 }, pre?.message || ""));
    const [consentF, consent] = field(t("consentText"), h("input", { name: "prechat-consent", maxlength: 500, value: pre?.consent || "" }));
    const preFields = h("div", { class: "prechat", hidden: !pre }, preMsgF, nameF, emailF, consentF);
    preOn.addEventListener("change", () => (preFields.hidden = !preOn.checked));
    const preF = h("fieldset", {}, h("legend", {}, t("prechat")), h("label", { class: "check" }, preOn, " ", t("prechatOn")), preFields);
    const csat = h("input", { type: "checkbox", name: "csat", checked: !!cfg.csat });
    const csatF = h("label", { class: "check" }, csat, " ", t("csatOn"));
    const snippet = `<script src="${location.origin}/widget.js" data-channel="${c.id}" async></script>`;
    const copyBtn = h("button", { type: "button" }, t("copy"));
    copyBtn.addEventListener("click", () => copy(snippet, copyBtn));
    const previewHead = h("div", { class: "pv-head" });
    const previewGreeting = h("div", { class: "pv-msg" });
    const preview = h(
      "div",
      { class: "pv", role: "img", "aria-label": t("previewHint") },
      h("div", { class: "pv-panel" }, previewHead, h("div", { class: "pv-log" }, previewGreeting), h("div", { class: "pv-input" }, "…")),
      h("div", { class: "pv-bubble" }),
    );
    const update = () => {
      preview.style.setProperty("--c", color.value);
      preview.classList.toggle("left", position.value === "left");
      previewHead.textContent = title.value || c.name;
      previewGreeting.textContent = greeting.value;
      previewGreeting.hidden = !greeting.value;
    };
    [title, greeting, color, position].forEach((el) => el.addEventListener("input", update));
    update();
    const save = h("button", { type: "submit", class: "primary" }, t("save"));
    const form = h("form", { class: "card", "aria-label": t("designer") }, titleF, greetF, startF, colorF, posF, langF, origF, uploadsF, csatF, preF, save);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const config = {
        ...cfg,
        title: title.value.trim() || null,
        greeting: greeting.value.trim() || null,
        starters: startersBox.value.split("\n").map((q) => q.trim()).filter(Boolean),
        color: color.value,
        position: position.value,
        language: language.value || null,
        allowed_origins: origins.value.split(/\s+/).filter(Boolean),
        uploads: uploads.checked,
        csat: csat.checked,
        prechat: preOn.checked
          ? { message: preMsg.value.trim() || null, name: nameUse.value, email: emailUse.value, consent: consent.value.trim() || null }
          : null,
      };
      try {
        const saved = await api.call("PATCH", `/v1/channels/${c.id}`, { config });
        Object.assign(c, saved);
        toast(t("saved"));
      } catch (e) {
        fail(e);
      }
    });
    body.append(
      form,
      h("section", { class: "card" }, h("h2", {}, t("preview")), preview, h("p", {}, t("snippet")), h("pre", { class: "snippet" }, h("code", {}, snippet)), copyBtn),
    );
  }
  draw();
}

const EVENTS = [
  ["handoff.requested", "evHandoff"],
  ["message.created", "evMessage"],
  ["conversation.resolved", "evResolved"],
  ["feedback.created", "evFeedback"],
];

export async function notifyCard() {
  const current = await api.get("/v1/tenant/notify");
  const [urlF, url] = field(t("url"), h("input", { type: "url", value: current.url || "", placeholder: "https://" }));
  const chosen = current.url ? current.events : ["handoff.requested"];
  const boxes = EVENTS.map(([event, label]) => {
    const box = h("input", { type: "checkbox", name: "event", value: event, checked: chosen.includes(event) });
    return [event, box, h("label", { class: "check" }, box, " ", t(label), " ", h("code", {}, event))];
  });
  const events = h("fieldset", { class: "events" }, h("legend", {}, t("notifyEvents")), boxes.map((b) => b[2]));
  const out = h("p", { class: "secret", "aria-live": "polite" });
  const remove = h("button", { type: "button", class: "danger" }, t("remove"));
  const log = h("tbody");
  const drawLog = async () => {
    const rows = current.url || url.value ? await api.get("/v1/tenant/notify/deliveries?limit=20") : [];
    clear(log).append(
      ...(rows.length
        ? rows.map((d) =>
            h("tr", { "data-status": d.status ?? "none" },
              h("td", {}, when(d.created_at)), h("td", {}, h("code", {}, d.event_type)), h("td", {}, String(d.attempt)),
              h("td", { class: d.error ? "bad" : "good" }, d.status ? String(d.status) : "—", d.error ? ` ${d.error}` : ""),
              h("td", {}, `${d.duration_ms} ms`)))
        : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, t("noDeliveries")))]),
    );
  };
  const form = h(
    "form",
    { class: "card notify" },
    h("h2", {}, t("notifyTitle")),
    h("p", { class: "muted" }, t("notifyHelp")),
    urlF,
    events,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, t("save")), remove),
    out,
    h("h3", {}, t("deliveries")),
    h("table", { class: "deliveries" }, h("thead", {}, h("tr", {}, [t("when"), t("event"), t("attempt"), t("status"), t("duration")].map((x) => h("th", { scope: "col" }, x)))), log),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const picked = boxes.filter((b) => b[1].checked).map((b) => b[0]);
    try {
      if (current.url && url.value.trim() === current.url) {
        // Same address: only the events change, the secret stays.
        const res = await api.call("PATCH", "/v1/tenant/notify", { events: picked });
        current.events = res.events;
        toast(t("saved"));
      } else {
        const res = await api.call("PUT", "/v1/tenant/notify", { url: url.value.trim(), events: picked });
        current.url = res.url;
        current.events = res.events;
        out.textContent = t("notifySecret", { secret: res.secret });
      }
      await drawLog();
    } catch (e) {
      fail(e);
    }
  });
  remove.addEventListener("click", async () => {
    try {
      await api.call("DELETE", "/v1/tenant/notify");
      current.url = null;
      url.value = "";
      out.textContent = "";
    } catch (e) {
      fail(e);
    }
  });
  await drawLog().catch(fail);
  return form;
}

/** The member's own notifications: e-mail on handoff, and the browser's while the console is open. */
export async function preferencesCard() {
  const prefs = await api.get("/v1/me/notifications");
  const email = h("input", { type: "checkbox", checked: prefs.email });
  email.addEventListener("change", async () => {
    try {
      await api.call("PUT", "/v1/me/notifications", { email: email.checked });
      toast(t("saved"));
    } catch (e) {
      email.checked = !email.checked;
      fail(e);
    }
  });
  const supported = typeof Notification !== "undefined";
  const state = h("span", { class: "muted" });
  const browserBox = h("input", { type: "checkbox", checked: supported && localStorage.getItem("coach.notifications") === "on" && Notification.permission === "granted", disabled: !supported });
  const show = () => {
    state.textContent = !supported ? t("notifyUnsupported") : Notification.permission === "denied" ? t("notifyBlocked") : "";
  };
  browserBox.addEventListener("change", async () => {
    if (browserBox.checked && Notification.permission !== "granted") {
      const answer = await Notification.requestPermission();
      if (answer !== "granted") browserBox.checked = false;
    }
    localStorage.setItem("coach.notifications", browserBox.checked ? "on" : "off");
    show();
  });
  show();
  return h(
    "div",
    { class: "card prefs" },
    h("h2", {}, t("prefsTitle")),
    h("label", { class: "check" }, email, " ", t("prefsEmail")),
    h("label", { class: "check" }, browserBox, " ", t("prefsBrowser"), " ", state),
  );
}

export async function team(main, _params, { me }) {
  const admin = me.role === "owner" || me.role === "admin";
  main.append(h("h1", {}, t("team")));
  const members = h("tbody");
  const invites = h("tbody");
  const keys = h("tbody");
  const out = h("p", { class: "secret", "aria-live": "polite" });
  const [emailF, email] = field(t("email"), h("input", { type: "email", required: true }));
  const [roleF, role] = field(t("role"), h("select", {}, ROLES.slice(1).map((r) => h("option", { value: r }, r))));
  const invite = h("form", { class: "row" }, emailF, roleF, h("button", { type: "submit", class: "primary" }, t("invite")));
  const [keyNameF, keyName] = field(t("name"), h("input", { required: true }));
  const [keyRoleF, keyRole] = field(t("role"), h("select", {}, ROLES.slice(1).map((r) => h("option", { value: r }, r))));
  const keyForm = h("form", { class: "row" }, keyNameF, keyRoleF, h("button", { type: "submit", class: "primary" }, t("newKey")));
  const canEdit = me.role !== "viewer";
  const cannedRows = h("tbody");
  const [shortF, shortcut] = field(t("shortcut"), h("input", { required: true, pattern: "[a-z0-9_\\-]{1,32}", maxlength: 32, name: "shortcut" }));
  const [cannedF, cannedText] = field(t("cannedText"), h("textarea", { required: true, rows: 2, maxlength: 5000, name: "canned-text" }));
  const cannedForm = h("form", { class: "row canned-form" }, shortF, cannedF, h("button", { type: "submit", class: "primary" }, t("addCanned")));
  const cannedCard = h(
    "section",
    { class: "card", "data-canned": "" },
    h("h2", {}, t("cannedReplies")),
    h("p", { class: "hint" }, t("cannedHelp")),
    h("table", {}, h("thead", {}, h("tr", {}, [t("shortcut"), t("cannedText"), ""].map((x) => h("th", { scope: "col" }, x)))), cannedRows),
    canEdit ? cannedForm : null,
  );
  async function loadCanned() {
    clear(cannedRows);
    for (const c of await api.get("/v1/canned-replies")) {
      const remove = canEdit ? h("button", { type: "button", class: "danger" }, t("delete")) : null;
      if (remove) remove.addEventListener("click", () => api.call("DELETE", `/v1/canned-replies/${c.id}`).then(loadCanned).catch(fail));
      cannedRows.append(h("tr", { "data-shortcut": c.shortcut }, h("td", {}, `/${c.shortcut}`), h("td", {}, c.text), h("td", {}, remove)));
    }
  }
  cannedForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.post("/v1/canned-replies", { shortcut: shortcut.value.trim(), text: cannedText.value.trim() });
      cannedForm.reset();
      await loadCanned();
    } catch (e) {
      fail(e);
    }
  });
  loadCanned().catch(fail);
  main.append(
    h("section", { class: "card" }, h("h2", {}, t("members")), h("table", {}, h("thead", {}, h("tr", {}, [t("email"), t("role"), ""].map((x) => h("th", { scope: "col" }, x)))), members), admin ? invite : null),
    !admin ? null : h("section", { class: "card" }, h("h2", {}, t("pendingInvites")), h("table", { "data-invites": "" }, h("thead", {}, h("tr", {}, [t("email"), t("role"), t("expires"), ""].map((x) => h("th", { scope: "col" }, x)))), invites)),
    cannedCard,
    !admin ? null : h("section", { class: "card" }, h("h2", {}, t("apiKeys")), h("table", {}, h("thead", {}, h("tr", {}, [t("name"), t("role"), t("created"), ""].map((x) => h("th", { scope: "col" }, x)))), keys), keyForm),
    out,
  );
  async function load() {
    clear(members);
    for (const m of await api.get("/v1/members")) {
      members.append(h("tr", {}, h("td", {}, m.email, m.user_id === me.user.id ? ` (${t("you")})` : ""), h("td", {}, m.role), h("td", {})));
    }
    clear(keys);
    clear(invites);
    // Keys and invitations are an admin's business; editors and viewers see the members only.
    if (!admin) return;
    for (const i of await api.get("/v1/members/invites")) {
      const revoke = h("button", { type: "button", class: "danger" }, t("revoke"));
      revoke.addEventListener("click", () =>
        api
          .call("DELETE", `/v1/members/invites/${i.id}`)
          .then(load)
          .catch(fail),
      );
      invites.append(h("tr", {}, h("td", {}, i.email), h("td", {}, i.role), h("td", {}, when(i.expires_at)), h("td", {}, revoke)));
    }
    for (const k of await api.get("/v1/api-keys")) {
      if (k.revoked_at) continue;
      const revoke = h("button", { type: "button", class: "danger" }, t("revoke"));
      revoke.addEventListener("click", () =>
        api
          .call("DELETE", `/v1/api-keys/${k.id}`)
          .then(load)
          .catch(fail),
      );
      keys.append(h("tr", {}, h("td", {}, k.name, h("span", { class: "muted" }, ` ${k.prefix}…`)), h("td", {}, k.role), h("td", {}, when(k.created_at)), h("td", {}, revoke)));
    }
  }
  invite.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const res = await api.post("/v1/members/invites", { email: email.value.trim(), role: role.value });
      out.textContent = t("inviteLink", { token: res.invite_token });
      invite.reset();
      await load();
    } catch (e) {
      fail(e);
    }
  });
  keyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const res = await api.post("/v1/api-keys", { name: keyName.value.trim(), role: keyRole.value });
      out.textContent = t("keyShown", { key: res.key });
      keyForm.reset();
      await load();
    } catch (e) {
      fail(e);
    }
  });
  await load();
}
