// Small DOM helpers: every text goes in as a text node (never HTML), so nothing a contact
// writes can run in the console.

import { t, lang } from "./i18n.js";

/** h("button", {class: "x", onclick: fn}, "text", child...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A labelled form field; returns [wrapper, input]. */
export function field(label, input) {
  const id = `f${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return [h("div", { class: "field" }, h("label", { for: id }, label), input), input];
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let toastTimer;
/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 6000);
}

export function fail(e) {
  toast(t("error", { msg: e.message || e }), "error");
}

export function when(iso) {
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return d.toLocaleString(lang(), today ? { hour: "2-digit", minute: "2-digit" } : { dateStyle: "medium", timeStyle: "short" });
}

// Channel marks as text in a coloured badge (emoji fonts are not everywhere).
const ICONS = { whatsapp: "WA", telegram: "TG", web_widget: "WEB", sms: "SMS" };
const NAMES = { whatsapp: "WhatsApp", telegram: "Telegram", web_widget: "Web", sms: "SMS" };

export function channelIcon(kind) {
  const name = NAMES[kind] || kind;
  return h("span", { class: `ch ch-${kind}`, title: name, role: "img", "aria-label": name }, ICONS[kind] || kind.slice(0, 3).toUpperCase());
}

/** A person's name for lists: the name the channel gave, else a short form of their id. */
export function personName(name, externalId) {
  if (name) return name;
  const id = String(externalId || "");
  if (id.startsWith("anon-")) return `Visitor ${id.slice(5, 11)}`;
  return id.length > 24 ? `${id.slice(0, 21)}…` : id;
}

export function channelName(kind) {
  return NAMES[kind] || kind;
}

/** The readable text of a stored message's content (inbound or outbound). */
export function textOf(content) {
  if (!content) return "";
  switch (content.kind) {
    case "text":
      return content.body ?? content.text ?? "";
    case "interactive":
      return content.text;
    case "interactive_reply":
      return content.title;
    case "media":
      return content.caption || (content.transcript ? `🎤 ${content.transcript}` : `[${content.media}]`);
    case "file":
      return content.caption || `📎 ${content.filename}`;
    case "template":
      return `[template ${content.name}]`;
    case "location":
      return `[${content.name || "location"}]`;
    case "reaction":
      return content.emoji ? `[${content.emoji}]` : "[—]";
    default:
      return `[${content.kind}]`;
  }
}

/** Splits a coach answer's "Sources: a; b" tail from its text. */
export function splitSources(text) {
  const at = text.lastIndexOf("\n\nSources: ");
  if (at < 0) return [text, []];
  return [text.slice(0, at), text.slice(at + 11).split("; ").filter(Boolean)];
}

export async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    if (button) {
      const was = button.textContent;
      button.textContent = t("copied");
      setTimeout(() => (button.textContent = was), 1500);
    }
  } catch {
    /* clipboard refused (http): the text is selectable */
  }
}
