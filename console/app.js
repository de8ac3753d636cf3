// The console's shell: login, navigation (hash routes), the live event feed, language.

import * as api from "./api.js";
import { t, setLang, lang, LANGS } from "./i18n.js";
import { h, clear, fail, toast } from "./ui.js";
import * as inbox from "./inbox.js";
import * as knowledge from "./knowledge.js";
import * as settings from "./settings.js";
import * as programs from "./programs.js";
import * as analytics from "./analytics.js";
import * as contacts from "./contacts.js";
import * as coach from "./coach.js";
import * as activity from "./activity.js";
import * as channels from "./channels.js";

const ROUTES = [
  ["inbox", inbox.render],
  ["contacts", contacts.render],
  ["knowledge", knowledge.render],
  ["coach", coach.render],
  ["widget", settings.widget],
  ["channels", channels.render],
  ["programs", programs.render],
  ["analytics", analytics.render],
  ["team", settings.team],
  ["activity", activity.render],
];

const root = document.getElementById("app");
let view = null;
let routing = 0;
let early = null;
let stopEvents = null;
let me = null;
let tenant = null;

setLang(lang());
api.onLogout(() => start());
// Links from e-mails: #/verify-email?token=... and #/reset-password?token=...
const MAIL_LINK = /^#\/(verify-email|reset-password)\?token=([\w-]+)/;
window.addEventListener("hashchange", () => (MAIL_LINK.test(location.hash) ? start() : route()));

start();

async function start() {
  if (stopEvents) stopEvents();
  stopEvents = null;
  const link = location.hash.match(MAIL_LINK);
  if (link) {
    history.replaceState(null, "", location.pathname);
    return link[1] === "verify-email" ? confirmEmail(link[2]) : showReset(link[2]);
  }
  if (!api.loggedIn()) return showLogin();
  try {
    [me, tenant] = await Promise.all([api.get("/v1/me"), api.get("/v1/tenant")]);
  } catch (e) {
    if (e.status === 401) return showLogin();
    return fail(e);
  }
  shell();
  stopEvents = api.follow(dispatch, (live) => {
    const dot = document.getElementById("live");
    if (!dot) return;
    dot.textContent = live ? t("live") : t("offline");
    dot.className = live ? "live on" : "live off";
  });
  route();
}

/** A card on the login page: its form, and a line for what happened (`say`). */
function card(title, ...fields) {
  clear(root);
  const note = h("p", { role: "alert", hidden: true });
  const say = (text, kind = "error") => {
    note.textContent = text;
    note.className = kind;
    note.hidden = !text;
  };
  const form = h("form", { class: "login card", "aria-labelledby": "login-title" }, h("h1", { id: "login-title" }, title), ...fields, note);
  root.append(h("main", { class: "center" }, form));
  return { form, note, say };
}

function showLogin(notice) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const { form, note, say } = card(t("app"), h("label", {}, t("email"), email), h("label", {}, t("password"), password));
  form.append(
    h("button", { type: "submit", class: "primary" }, t("login")),
    h("button", { type: "button", class: "link", onclick: () => showForgot(email.value.trim()) }, t("forgot")),
    langPicker(),
  );
  if (notice) say(notice, "notice");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("");
    try {
      await api.login(email.value.trim(), password.value);
      start();
    } catch (e) {
      if (e.type === "email-unconfirmed") {
        say(t("unconfirmed"));
        if (form.querySelector(".resend")) return;
        const again = h("button", { type: "button", class: "link resend" }, t("resendLink"));
        again.addEventListener("click", async () => {
          try {
            await api.open("/v1/auth/verify-email/resend", { email: email.value.trim() });
            say(t("linkResent"), "notice");
          } catch (err) {
            say(err.message);
          }
        });
        note.after(again);
        return;
      }
      say(e.status === 401 ? t("loginFailed") : e.message);
    }
  });
  email.focus();
}

function showForgot(known) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, value: known });
  const { form, say } = card(t("forgot"), h("label", {}, t("email"), email));
  form.append(
    h("button", { type: "submit", class: "primary" }, t("sendLink")),
    h("button", { type: "button", class: "link", onclick: () => showLogin() }, t("backToLogin")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.open("/v1/auth/password-reset", { email: email.value.trim() });
      say(t("resetSent"), "notice");
    } catch (e) {
      say(e.message);
    }
  });
  email.focus();
}

function showReset(token) {
  const password = h("input", { type: "password", name: "new-password", autocomplete: "new-password", required: true, minlength: 10 });
  const { form, say } = card(t("newPassword"), h("label", {}, t("newPassword"), password));
  form.append(h("button", { type: "submit", class: "primary" }, t("setPassword")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.open("/v1/auth/password-reset/confirm", { token, new_password: password.value });
      showLogin(t("passwordSet"));
    } catch (e) {
      say(e.message);
    }
  });
  password.focus();
}

async function confirmEmail(token) {
  const { say } = card(t("app"));
  say(t("confirming"), "notice");
  try {
    await api.open("/v1/auth/verify-email", { token });
    showLogin(t("confirmed"));
  } catch (e) {
    say(e.message);
  }
}

function langPicker() {
  const select = h(
    "select",
    { "aria-label": t("language"), class: "lang" },
    LANGS.map((l) => h("option", { value: l, selected: l === lang() }, l.toUpperCase())),
  );
  select.addEventListener("change", () => {
    setLang(select.value);
    api.loggedIn() ? start() : showLogin();
  });
  return select;
}

function shell() {
  clear(root);
  const nav = h(
    "nav",
    { "aria-label": t("app") },
    h("ul", {}, ROUTES.map(([name]) => h("li", {}, h("a", { href: `#/${name}`, "data-route": name }, t(name))))),
  );
  root.append(
    h("a", { href: "#main", class: "skip" }, t("skip")),
    h(
      "header",
      { class: "top" },
      h("strong", { class: "brand" }, tenant.name),
      h("span", { id: "live", class: "live off", role: "status" }, t("offline")),
      h("span", { class: "spacer" }),
      h("span", { class: "who" }, me.user.email),
      langPicker(),
      h("button", { type: "button", onclick: () => api.logout() }, t("logout")),
    ),
    nav,
    h("main", { id: "main", tabindex: "-1" }),
    h("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite", hidden: true }),
  );
}

/** A channel that is failing (an expired token, messages dying) shows on the navigation. */
function markChannels() {
  api
    .get("/v1/channels/health")
    .then((all) => {
      const link = document.querySelector("nav a[data-route=channels]");
      if (!link) return;
      link.querySelector(".alert-dot")?.remove();
      const bad = all.filter((x) => x.status !== "ok").length;
      if (bad) link.append(h("span", { class: "alert-dot", title: t("healthNav", { n: bad }) }, ` ⚠ ${bad}`));
    })
    .catch(() => {});
}

function route() {
  if (!api.loggedIn() || !document.getElementById("main")) return;
  const [name = "inbox", ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const found = ROUTES.find(([n]) => n === name) || ROUTES[0];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.route === found[0]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  markChannels();
  if (view && view.dispose) view.dispose();
  const main = clear(document.getElementById("main"));
  main.dataset.view = found[0];
  view = null;
  // Events that arrive while the view loads are handed to it once it is ready; a view that
  // finishes after the user moved on is dropped.
  const mine = ++routing;
  const waiting = [];
  early = waiting;
  Promise.resolve(found[1](main, params, { me, tenant }))
    .then((v) => {
      if (mine !== routing) return v && v.dispose && v.dispose();
      view = v || null;
      early = null;
      for (const [name, data] of waiting) if (view && view.onEvent) view.onEvent(name, data);
    })
    .catch(fail);
}

/** A system notification for a handoff when the member turned them on and looks elsewhere. */
function notifyBrowser(text, conversation) {
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
  if (localStorage.getItem("coach.notifications") !== "on" || !document.hidden) return;
  const note = new Notification(t("app"), { body: text, tag: `handoff-${conversation}` });
  note.onclick = () => {
    window.focus();
    location.hash = `#/inbox/${conversation}`;
    note.close();
  };
}

function dispatch(name, data) {
  if (name === "handoff" && !location.hash.includes(data.conversation_id)) {
    const why = t({ asked_for_human: "handoffAsked", quota_reached: "handoffQuota", crisis: "handoffCrisis" }[data.reason] || "handoffLow");
    toast(t("needsYou", { question: data.question.slice(0, 80), why }), data.reason === "crisis" ? "error" : "warn");
    notifyBrowser(t("needsYou", { question: data.question.slice(0, 80), why }), data.conversation_id);
  }
  if (early) early.push([name, data]);
  else if (view && view.onEvent) view.onEvent(name, data);
}
