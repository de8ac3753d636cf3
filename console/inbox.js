// The live inbox: conversations (waiting for a person first, unread counts, channel icons) and
// one conversation (streamed answers, citations, delivery ticks, take over, reply, hand back).

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, when, channelIcon, channelName, textOf, splitSources, personName } from "./ui.js";

const TICKS = { pending: "…", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

export async function render(main, params) {
  const openId = params[0] || null;
  const list = h("ul", { class: "conv-list", "aria-label": t("inbox") });
  const pane = h("section", { class: "conv-pane", "aria-live": "off" });
  main.append(h("div", { class: "inbox" }, h("section", { class: "conv-col" }, h("h1", {}, t("inbox")), list), pane));
  let items = [];
  let thread = null;

  async function loadList() {
    items = await api.get("/v1/inbox?limit=100");
    drawList();
  }

  function drawList() {
    clear(list);
    if (!items.length) list.append(h("li", { class: "empty" }, t("noConversations")));
    for (const it of items) list.append(row(it));
  }

  function row(it) {
    const c = it.conversation;
    const name = personName(it.contact_name, c.external_id);
    const preview = it.last_content ? textOf(it.last_content) : "";
    const unread = c.id === openId ? 0 : it.unread;
    return h(
      "li",
      { class: `conv ${c.status}${c.id === openId ? " current" : ""}`, "data-conversation": c.id, "data-status": c.status },
      h(
        "a",
        { href: `#/inbox/${c.id}`, "aria-current": c.id === openId ? "true" : null },
        channelIcon(it.channel_kind),
        h(
          "span",
          { class: "conv-main" },
          h("span", { class: "conv-name" }, name),
          h("span", { class: "conv-preview" }, (it.last_direction === "outbound" ? "↩ " : "") + preview.slice(0, 80)),
        ),
        h(
          "span",
          { class: "conv-meta" },
          h("time", { datetime: c.last_message_at }, when(c.last_message_at)),
          c.status !== "open" ? h("span", { class: `badge ${c.status}` }, t(c.status)) : null,
          unread ? h("span", { class: "unread", "aria-label": t("unread", { n: unread }) }, String(unread)) : null,
        ),
      ),
    );
  }

  await loadList();
  if (openId) {
    thread = await openThread(pane, openId, items.find((i) => i.conversation.id === openId));
  } else {
    pane.append(h("p", { class: "hint" }, t("pickConversation")));
  }

  return {
    onEvent(name, data) {
      if (name === "resync") {
        loadList().catch(fail);
        if (thread) thread.reload();
        return;
      }
      if (name === "message") {
        const m = data.message;
        const it = items.find((i) => i.conversation.id === m.conversation_id);
        if (!it) {
          loadList().catch(fail);
        } else {
          it.last_content = m.content;
          it.last_direction = m.direction;
          it.conversation.last_message_at = m.created_at;
          if (m.direction === "inbound" && m.conversation_id !== openId) it.unread += 1;
          items = [it, ...items.filter((i) => i !== it)].sort((a, b) => (b.conversation.status === "waiting") - (a.conversation.status === "waiting"));
          drawList();
        }
      } else if (name === "conversation") {
        const it = items.find((i) => i.conversation.id === data.conversation.id);
        if (it) {
          it.conversation.status = data.conversation.status;
          items.sort((a, b) => (b.conversation.status === "waiting") - (a.conversation.status === "waiting"));
          drawList();
        } else loadList().catch(fail);
      }
      if (thread) thread.onEvent(name, data);
    },
  };
}

async function openThread(pane, id, item) {
  let conversation = await api.get(`/v1/conversations/${id}`);
  const log = h("ol", { class: "log", "aria-label": t("inbox"), "aria-live": "polite" });
  const status = h("span", { class: "badge" });
  const take = h("button", { type: "button", class: "take" }, t("takeOver"));
  const back = h("button", { type: "button", class: "back" }, t("handBack"));
  const text = h("textarea", { rows: 3, placeholder: t("replyPlaceholder"), "aria-label": t("reply") });
  const send = h("button", { type: "submit", class: "primary" }, t("send"));
  const form = h("form", { class: "reply" }, text, send);
  const typing = h("p", { class: "typing", hidden: true }, t("typing"));
  const name = personName(item && item.contact_name, conversation.external_id);
  pane.append(
    h(
      "header",
      { class: "thread-head" },
      item ? channelIcon(item.channel_kind) : null,
      h("h2", {}, name),
      item ? h("span", { class: "muted" }, `${channelName(item.channel_kind)} · ${item.channel_name}`) : null,
      status,
      h("span", { class: "spacer" }),
      take,
      back,
    ),
    log,
    typing,
    form,
  );
  const seen = new Map();
  let streaming = null;

  function drawStatus() {
    status.textContent = t(conversation.status);
    status.className = `badge ${conversation.status}`;
    pane.dataset.status = conversation.status;
    take.hidden = conversation.status === "human";
    back.hidden = conversation.status === "open";
  }

  function bubble(m) {
    const raw = textOf(m.content);
    const [body, sources] = m.direction === "outbound" ? splitSources(raw) : [raw, []];
    const tick = m.direction === "outbound" && m.status ? h("span", { class: `tick ${m.status}`, title: t(m.status), "aria-label": t(m.status) }, TICKS[m.status] || "") : null;
    return h(
      "li",
      { class: `msg ${m.direction === "inbound" ? "in" : "out"}`, "data-message": m.id },
      h("div", { class: "body" }, body),
      sources.length ? h("div", { class: "sources" }, h("span", { class: "muted" }, `${t("sources")}: `), sources.map((s) => h("span", { class: "chip" }, s))) : null,
      h("div", { class: "meta" }, h("time", { datetime: m.created_at }, when(m.created_at)), tick),
    );
  }

  function add(m) {
    if (seen.has(m.id)) return;
    const el = bubble(m);
    seen.set(m.id, el);
    log.insertBefore(el, streaming);
    el.scrollIntoView({ block: "end" });
  }

  async function reload() {
    clear(log);
    seen.clear();
    streaming = null;
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const res = await api.get(`/v1/conversations/${id}/messages?limit=200${q}`);
      res.items.forEach(add);
      cursor = res.next_cursor;
      if (!cursor) break;
    }
    conversation = await api.get(`/v1/conversations/${id}`);
    drawStatus();
    api.post(`/v1/conversations/${id}/read`).catch(() => {});
  }

  take.addEventListener("click", async () => {
    try {
      conversation = await api.post(`/v1/conversations/${id}/takeover`);
      drawStatus();
      text.focus();
    } catch (e) {
      fail(e);
    }
  });
  back.addEventListener("click", async () => {
    try {
      conversation = await api.post(`/v1/conversations/${id}/handback`);
      drawStatus();
    } catch (e) {
      fail(e);
    }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    send.disabled = true;
    try {
      const m = await api.post(`/v1/conversations/${id}/messages`, { text: value });
      text.value = "";
      add(m);
      conversation = await api.get(`/v1/conversations/${id}`);
      drawStatus();
    } catch (e) {
      fail(e);
    } finally {
      send.disabled = false;
    }
  });
  text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  await reload();

  return {
    reload: () => reload().catch(fail),
    onEvent(name, data) {
      const mine = (data.conversation_id || (data.message && data.message.conversation_id) || (data.conversation && data.conversation.id)) === id;
      if (!mine) return;
      if (name === "message") {
        add(data.message);
        if (data.message.direction === "inbound") api.post(`/v1/conversations/${id}/read`).catch(() => {});
      } else if (name === "answer") {
        const phase = data.phase;
        if (phase.phase === "start") {
          typing.hidden = false;
        } else if (phase.phase === "delta") {
          typing.hidden = true;
          if (!streaming) {
            streaming = h("li", { class: "msg out streaming" }, h("div", { class: "body" }));
            log.append(streaming);
          }
          streaming.firstChild.textContent += phase.text;
          streaming.scrollIntoView({ block: "end" });
        } else {
          typing.hidden = true;
          if (streaming) streaming.remove();
          streaming = null;
        }
      } else if (name === "status") {
        const el = seen.get(data.message_id);
        const tick = el && el.querySelector(".tick");
        if (tick) {
          tick.className = `tick ${data.status}`;
          tick.textContent = TICKS[data.status] || "";
          tick.title = t(data.status);
          tick.setAttribute("aria-label", t(data.status));
        }
      } else if (name === "conversation") {
        conversation = data.conversation;
        drawStatus();
      }
    },
  };
}
