// The live inbox: conversations (waiting for a person first, unread counts, channel icons) and
// one conversation (streamed answers, citations, delivery ticks, take over, reply, hand back).

import * as api from "./api.js";
import { t } from "./i18n.js";
import { h, clear, fail, when, channelIcon, channelName, textOf, splitSources, personName } from "./ui.js";
import { progressBox } from "./progress.js";

const TICKS = { pending: "…", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

export async function render(main, params) {
  const openId = params[0] || null;
  const list = h("ul", { class: "conv-list", "aria-label": t("inbox") });
  const pane = h("section", { class: "conv-pane", "aria-live": "off" });
  // Search (words of any message, a contact's name or number) and views, on the server.
  const search = h("input", { type: "search", name: "q", placeholder: t("searchHint"), "aria-label": t("search"), maxlength: "200" });
  const views = { all: "", mine: "assignee=me", unassigned: "assignee=none", waiting: "status=waiting", resolved: "status=resolved", snoozed: "status=snoozed" };
  const view = h(
    "select",
    { name: "view", "aria-label": t("view") },
    ...Object.keys(views).map((v) => h("option", { value: v }, t({ all: "viewAll", mine: "viewMine", unassigned: "viewUnassigned" }[v] || v))),
  );
  const finder = h("form", { class: "conv-find", role: "search" }, search, view);
  main.append(h("div", { class: "inbox" }, h("section", { class: "conv-col" }, h("h1", {}, t("inbox")), finder, list), pane));
  let items = [];
  let thread = null;
  let asked = 0;

  function filters() {
    const parts = [];
    const q = search.value.trim();
    if (q) parts.push(`q=${encodeURIComponent(q)}`);
    if (views[view.value]) parts.push(views[view.value]);
    return parts.join("&");
  }

  async function loadList() {
    const query = filters();
    const mine = ++asked;
    const found = await api.get(`/v1/inbox?limit=100${query ? `&${query}` : ""}`);
    if (mine !== asked) return; // a newer search answered first
    items = found;
    drawList();
  }

  function drawList() {
    clear(list);
    if (!items.length) list.append(h("li", { class: "empty" }, filters() ? t("noMatches") : t("noConversations")));
    for (const it of items) list.append(row(it));
  }

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => loadList().catch(fail), 250);
  });
  view.addEventListener("change", () => loadList().catch(fail));
  finder.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(typing);
    loadList().catch(fail);
  });

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
        if (!it || filters()) {
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
        if (it && !filters()) {
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
  const resolveBtn = h("button", { type: "button", class: "resolve" }, t("resolve"));
  const snoozeBtn = h("button", { type: "button", class: "snooze", title: t("snoozeHint") }, t("snooze"));
  const reopenBtn = h("button", { type: "button", class: "reopen" }, t("reopen"));
  // Labels and private notes: the team's, never sent to the contact.
  const chips = h("span", { class: "chips" });
  const labelInput = h("input", { type: "text", class: "label-input", placeholder: t("addLabel"), "aria-label": t("addLabel"), maxlength: 50 });
  const noteList = h("ol", { class: "notes" });
  const noteText = h("textarea", { rows: 2, class: "note-text", placeholder: t("addNote"), "aria-label": t("addNote"), maxlength: 5000 });
  const noteForm = h("form", { class: "note-form" }, noteText, h("button", { type: "submit" }, t("saveNote")));
  const notesBox = h("details", { class: "notes-box" }, h("summary", {}, t("notes")), noteList, noteForm);
  // What the coach remembers of the person: goals and facts in their words, the team's notes.
  const memoryList = h("ol", { class: "memory" });
  const memoryKind = h("select", { class: "memory-kind", "aria-label": t("memoryKind") }, ["note", "goal", "fact"].map((k) => h("option", { value: k }, t(`memory_${k}`))));
  const memoryText = h("input", { type: "text", class: "memory-text", placeholder: t("addMemory"), "aria-label": t("addMemory"), maxlength: 300 });
  const memoryForm = h("form", { class: "memory-form" }, memoryKind, memoryText, h("button", { type: "submit" }, t("remember")));
  const memoryBox = h("details", { class: "memory-box" }, h("summary", {}, t("memory")), memoryList, memoryForm);
  // The language the coach answers in: detected from their messages unless the team sets one.
  const LANGS = { en: "English", es: "Español", pt: "Português", fr: "Français", de: "Deutsch", it: "Italiano", nl: "Nederlands" };
  const langSelect = h("select", { class: "contact-language", "aria-label": t("replyLanguage") });
  const langBox = h("label", { class: "muted" }, `${t("replyLanguage")}: `, langSelect);
  // Their answers to progress questions, with streaks.
  const progress = progressBox();
  const tools = h("div", { class: "thread-tools" }, h("span", { class: "muted" }, `${t("labels")}: `), chips, labelInput, langBox, notesBox, memoryBox, progress.box);
  // Canned replies, offered while the reply starts with "/".
  const suggestions = h("ul", { class: "canned", role: "listbox", "aria-label": t("cannedReplies"), hidden: true });
  let canned = [];
  const text = h("textarea", { rows: 3, placeholder: t("replyPlaceholder"), "aria-label": t("reply") });
  const send = h("button", { type: "submit", class: "primary" }, t("send"));
  // A file from the library, uploaded when chosen and sent with the reply as its caption.
  const picker = h("input", { type: "file", hidden: true, "aria-label": t("attachFile") });
  const attach = h("button", { type: "button", class: "attach", title: t("attachFile"), "aria-label": t("attachFile") }, "📎");
  const chosen = h("span", { class: "chosen" });
  let fileId = null;
  attach.addEventListener("click", () => picker.click());
  picker.addEventListener("change", async () => {
    const f = picker.files[0];
    picker.value = "";
    if (!f) return;
    attach.disabled = true;
    try {
      const body = new FormData();
      body.append("file", f, f.name);
      const kept = await api.post("/v1/files", body);
      fileId = kept.id;
      const drop = h("button", { type: "button", title: t("removeFile"), "aria-label": t("removeFile") }, "✕");
      drop.addEventListener("click", () => { fileId = null; clear(chosen); });
      clear(chosen);
      chosen.append(h("span", { class: "chip", "data-file": kept.id }, `📎 ${kept.name}`), drop);
    } catch (e) {
      fail(e);
    } finally {
      attach.disabled = false;
    }
  });
  const form = h("form", { class: "reply" }, text, h("div", { class: "reply-tools" }, attach, picker, chosen), send);
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
      resolveBtn,
      snoozeBtn,
      reopenBtn,
    ),
    tools,
    log,
    typing,
    suggestions,
    form,
  );
  const seen = new Map();
  let streaming = null;

  function drawStatus() {
    status.textContent = t(conversation.status);
    status.className = `badge ${conversation.status}`;
    pane.dataset.status = conversation.status;
    const aside = conversation.status === "resolved" || conversation.status === "snoozed";
    take.hidden = conversation.status === "human" || aside;
    back.hidden = conversation.status === "open" || aside;
    resolveBtn.hidden = conversation.status === "resolved";
    snoozeBtn.hidden = aside;
    reopenBtn.hidden = !aside;
  }

  let labels = [];
  function drawLabels() {
    clear(chips);
    for (const label of labels) {
      const remove = h("button", { type: "button", class: "chip-x", "aria-label": t("removeLabel", { label }) }, "×");
      remove.addEventListener("click", () => saveLabels(labels.filter((l) => l !== label)));
      chips.append(h("span", { class: "chip label", "data-label": label }, label, remove));
    }
  }
  async function saveLabels(next) {
    try {
      labels = await api.call("PUT", `/v1/conversations/${id}/labels`, next);
      drawLabels();
    } catch (e) {
      fail(e);
    }
  }
  labelInput.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const label = labelInput.value.trim();
    labelInput.value = "";
    if (label) saveLabels([...labels, label]);
  });
  function drawNotes(notes) {
    clear(noteList);
    for (const n of notes) noteList.append(h("li", { class: "note" }, h("div", {}, n.text), h("time", { class: "muted", datetime: n.created_at }, when(n.created_at))));
    notesBox.querySelector("summary").textContent = `${t("notes")} (${notes.length})`;
  }
  noteForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = noteText.value.trim();
    if (!value) return;
    try {
      await api.post(`/v1/conversations/${id}/notes`, { text: value });
      noteText.value = "";
      drawNotes(await api.get(`/v1/conversations/${id}/notes`));
    } catch (e) {
      fail(e);
    }
  });
  function drawLanguage(contact) {
    clear(langSelect);
    const detected = contact.detected_language ? ` (${LANGS[contact.detected_language] || contact.detected_language})` : "";
    langSelect.append(h("option", { value: "" }, `${t("languageAuto")}${detected}`));
    for (const [tag, label] of Object.entries(LANGS)) langSelect.append(h("option", { value: tag }, label));
    if (contact.language && !LANGS[contact.language]) langSelect.append(h("option", { value: contact.language }, contact.language));
    langSelect.value = contact.language || "";
  }
  langSelect.addEventListener("change", async () => {
    try {
      const set = await api.call("PATCH", `/v1/contacts/${conversation.contact_id}`, { language: langSelect.value || null });
      drawLanguage(set);
    } catch (e) {
      fail(e);
    }
  });
  let memory = [];
  const memoryPath = () => `/v1/contacts/${conversation.contact_id}/memory`;
  function drawMemory() {
    clear(memoryList);
    for (const m of memory) {
      const forget = h("button", { type: "button", class: "chip-x", "aria-label": t("forget", { text: m.text }) }, "×");
      forget.addEventListener("click", () => saveMemory(memory.filter((x) => x.id !== m.id)));
      memoryList.append(
        h("li", { class: `memory-item ${m.kind}`, "data-source": m.source },
          h("span", { class: "kind" }, t(`memory_${m.kind}`)), h("span", { class: "text" }, m.text), " ",
          h("span", { class: "muted" }, `(${t(m.source === "coachee" ? "fromContact" : "fromTeam")})`), forget),
      );
    }
    memoryBox.querySelector("summary").textContent = `${t("memory")} (${memory.length})`;
  }
  async function saveMemory(next) {
    try {
      const items = next.map((m) => ({ id: m.id, kind: m.kind, text: m.text }));
      memory = (await api.call("PUT", memoryPath(), { items })).items;
      drawMemory();
    } catch (e) {
      fail(e);
    }
  }
  memoryForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = memoryText.value.trim();
    if (!value) return;
    memoryText.value = "";
    await saveMemory([...memory, { kind: memoryKind.value, text: value }]);
  });
  for (const [btn, action, body] of [[resolveBtn, "resolve"], [reopenBtn, "reopen"], [snoozeBtn, "snooze", { minutes: 1440 }]]) {
    btn.addEventListener("click", async () => {
      try {
        conversation = await api.post(`/v1/conversations/${id}/${action}`, body);
        drawStatus();
      } catch (e) {
        fail(e);
      }
    });
  }

  // "/" then the start of a shortcut: matching canned replies; Tab, Enter or a click inserts one.
  function matches() {
    const typed = text.value;
    if (!typed.startsWith("/") || /\s/.test(typed)) return [];
    return canned.filter((c) => c.shortcut.startsWith(typed.slice(1).toLowerCase())).slice(0, 8);
  }
  function insert(reply) {
    text.value = reply.text;
    suggestions.hidden = true;
    text.focus();
  }
  function suggest() {
    const found = matches();
    clear(suggestions);
    suggestions.hidden = !found.length;
    for (const c of found) {
      const item = h("li", { role: "option", "data-shortcut": c.shortcut }, h("strong", {}, `/${c.shortcut}`), " ", c.text.slice(0, 80));
      item.addEventListener("mousedown", (ev) => {
        ev.preventDefault();
        insert(c);
      });
      suggestions.append(item);
    }
  }
  text.addEventListener("input", suggest);

  function bubble(m) {
    // A voice note's words show under its player, not as its text.
    const heard = m.content?.kind === "media" && m.content.media === "voice";
    // A file shows itself; its caption is the text.
    const filed = m.content?.kind === "media" || m.content?.kind === "file";
    const raw = heard || m.content?.kind === "file" ? m.content.caption || "" : textOf(m.content);
    const [body, sources] = m.direction === "outbound" ? splitSources(raw) : [raw, []];
    const tick = m.direction === "outbound" && m.status ? h("span", { class: `tick ${m.status}`, title: t(m.status), "aria-label": t(m.status) }, TICKS[m.status] || "") : null;
    return h(
      "li",
      { class: `msg ${m.direction === "inbound" ? "in" : "out"}`, "data-message": m.id },
      filed ? media(m) : null,
      h("div", { class: "body" }, body),
      sources.length ? h("div", { class: "sources" }, h("span", { class: "muted" }, `${t("sources")}: `), sources.map((s) => h("span", { class: "chip" }, s))) : null,
      h("div", { class: "meta" }, h("time", { datetime: m.created_at }, when(m.created_at)), tick),
    );
  }

  // A file the contact sent (or the team sent from the library): images in place, audio and
  // video playable, anything else a download (the server reads the type from the file's bytes;
  // SVG or HTML is never shown). A message shown live may arrive before its file is kept (a
  // provider download): asked again a few times while it is missing.
  function media(m, attempt = 0) {
    const box = h("div", { class: "media", "data-kind": "loading" });
    const sent = m.content.kind === "file";
    const fresh = !sent && !m.content.file && Date.now() - new Date(m.created_at).getTime() < 10 * 60_000;
    const load = (n) => api.file(`/v1/messages/${m.id}/media`).catch((e) => {
      if (e.status === 404 && fresh && n < 6 && box.isConnected !== false) return new Promise((r) => setTimeout(r, 500 * 2 ** n)).then(() => load(n + 1));
      throw e;
    });
    load(attempt).then(({ blob, kind }) => {
      const url = URL.createObjectURL(blob);
      const caption = m.content.caption || t(`media_${m.content.media}`);
      const shown =
        kind === "image" ? h("img", { src: url, alt: caption, loading: "lazy" })
        : kind === "audio" ? h("audio", { controls: true, src: url, "aria-label": caption })
        : kind === "video" ? h("video", { controls: true, src: url, "aria-label": caption })
        : h("a", { href: url, download: m.content.filename || `${m.content.media}-${m.id}` }, `⬇ ${m.content.filename || t("download")}`);
      box.dataset.kind = kind;
      box.prepend(shown);
    }).catch(() => { box.dataset.kind = "missing"; });
    if (m.content.media === "voice") box.append(transcript(m.content));
    return box;
  }

  // What a voice note said (and in which language), or why it was not heard; updated live.
  function transcript({ transcript: said, language, transcript_error: error }) {
    if (said) return h("p", { class: "transcript", lang: language || null }, h("span", { class: "muted" }, language ? `${t("transcript")} (${language}): ` : `${t("transcript")}: `), said);
    if (error) return h("p", { class: "transcript muted" }, t(["too_long", "unreadable", "silent"].includes(error) ? `transcript_${error}` : "transcript_unavailable"));
    return h("p", { class: "transcript muted", "aria-busy": "true" }, t("transcribing"));
  }

  function add(m) {
    if (seen.has(m.id)) return;
    const el = bubble(m);
    seen.set(m.id, el);
    log.insertBefore(el, streaming);
    el.scrollIntoView({ block: "end" });
  }

  // The newest messages first (a long conversation opens at its end); earlier ones a page at a
  // time above them, the reading position kept.
  const PAGE = 100;
  const page = (cursor) =>
    api.get(`/v1/conversations/${id}/messages?order=newest&limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);

  function earlier(cursor) {
    const old = log.querySelector("li.earlier");
    if (old) old.remove();
    if (!cursor) return;
    const more = h("button", { type: "button" }, t("earlier"));
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const res = await page(cursor);
        const height = log.scrollHeight;
        let at = log.querySelector("li.earlier").nextSibling;
        for (const m of res.items.reverse()) {
          if (seen.has(m.id)) continue;
          const el = bubble(m);
          seen.set(m.id, el);
          log.insertBefore(el, at);
          at = el.nextSibling;
        }
        log.scrollTop += log.scrollHeight - height;
        earlier(res.next_cursor);
      } catch (e) {
        more.disabled = false;
        fail(e);
      }
    });
    log.prepend(h("li", { class: "earlier" }, more));
  }

  async function reload() {
    clear(log);
    seen.clear();
    streaming = null;
    const res = await page(null);
    res.items.reverse().forEach(add);
    earlier(res.next_cursor);
    conversation = await api.get(`/v1/conversations/${id}`);
    drawStatus();
    [labels, canned] = await Promise.all([api.get(`/v1/conversations/${id}/labels`), api.get("/v1/canned-replies")]);
    drawLabels();
    drawNotes(await api.get(`/v1/conversations/${id}/notes`));
    memory = (await api.get(memoryPath())).items;
    drawMemory();
    drawLanguage(await api.get(`/v1/contacts/${conversation.contact_id}`));
    await progress.load(conversation.contact_id);
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
    if (!value && !fileId) return;
    send.disabled = true;
    try {
      const m = await api.post(`/v1/conversations/${id}/messages`, fileId ? { text: value, file_id: fileId } : { text: value });
      text.value = "";
      fileId = null;
      clear(chosen);
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
    const found = suggestions.hidden ? [] : matches();
    if (found.length && (ev.key === "Tab" || (ev.key === "Enter" && !ev.shiftKey))) {
      ev.preventDefault();
      insert(found[0]);
      return;
    }
    if (ev.key === "Escape") suggestions.hidden = true;
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
      } else if (name === "transcript") {
        const el = seen.get(data.message_id);
        const old = el && el.querySelector(".transcript");
        if (old) old.replaceWith(transcript({ transcript: data.transcript, language: data.language, transcript_error: data.error }));
      }
    },
  };
}
