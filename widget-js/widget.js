/* Coaching gateway web widget. No dependencies and no build step: this file is served as is.
 * Embed: <script src="https://HOST/widget.js" data-channel="CHANNEL_ID" async></script>
 * Protocol: connectors/web-widget (versioned JSON frames over one WebSocket). */

(function () {
  "use strict";
  // ---- a safe markdown subset: the text is escaped first, then a few patterns become tags ----
  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function markdown(s) {
    return esc(s)
      .replace(/`([^`\n]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*\n]+)\*\*/g, "<b>$1</b>")
      .replace(/(^|[\s(])\*([^*\n]+)\*/g, "$1<i>$2</i>")
      .replace(/\[([^\]\n]+)\]\((https?:\/\/[^)\s]+)\)/g,
        "<a href='$2' target='_blank' rel='noopener noreferrer'>$1</a>")
      .replace(/^[-*] /gm, "\u2022 ");
  }
  // Node (tests/unit/widget.test.mjs) runs this file without a page to check the markdown.
  if (typeof __coachWidgetUnderTest === "function") __coachWidgetUnderTest({ markdown: markdown });
  if (typeof document === "undefined") return;

  var script = document.currentScript || document.querySelector("script[data-channel]");
  if (!script || window.CoachWidget) return;
  var channel = script.getAttribute("data-channel");
  // "app": the coachee app (/c/{channel}/): the chat fills the screen, always open.
  var app = script.getAttribute("data-mode") === "app";
  var base = new URL(script.src, location.href).origin;
  var KEY = "coach-widget:" + channel;

  var TEXT = {
    en: { title: "Chat with us", placeholder: "Type a message", send: "Send", open: "Open chat",
      close: "Close chat", offline: "Offline: messages will be sent when the connection is back",
      typing: "Typing", sources: "Sources", failed: "Not sent yet", unread: "unread messages",
      stop: "Stop check-ins", stopWord: "STOP", helpful: "Helpful", unhelpful: "Not helpful",
      progress: "My progress", progressWord: "progress", attach: "Send an image or a PDF",
      upFailed: "The file was not sent", away: "The team is away", back: "back",
      name: "Your name", email: "Your e-mail", start: "Start the chat",
      rate: "Rate this conversation", stars: "out of 5", thanks: "Thank you for your rating",
      comment: "Anything to add? (optional)", rec: "Record a voice note", recStop: "Stop and send",
      voiceNote: "Voice note" },
    es: { title: "Chatea con nosotros", placeholder: "Escribe un mensaje", send: "Enviar",
      open: "Abrir chat", close: "Cerrar chat",
      offline: "Sin conexi\u00f3n: los mensajes se enviar\u00e1n al volver la conexi\u00f3n",
      typing: "Escribiendo", sources: "Fuentes", failed: "A\u00fan sin enviar",
      unread: "mensajes sin leer", stop: "No recibir m\u00e1s mensajes", stopWord: "BAJA",
      helpful: "\u00datil", unhelpful: "No me sirvi\u00f3", progress: "Mi progreso",
      progressWord: "progreso", attach: "Enviar una imagen o un PDF",
      upFailed: "El archivo no se envi\u00f3", away: "El equipo no est\u00e1 ahora", back: "vuelve",
      name: "Tu nombre", email: "Tu correo electr\u00f3nico", start: "Empezar el chat",
      rate: "Valora esta conversaci\u00f3n", stars: "de 5", thanks: "Gracias por tu valoraci\u00f3n",
      comment: "\u00bfAlgo m\u00e1s? (opcional)", rec: "Grabar una nota de voz", recStop: "Parar y enviar",
      voiceNote: "Nota de voz" },
    pt: { title: "Converse conosco", placeholder: "Escreva uma mensagem", send: "Enviar",
      open: "Abrir chat", close: "Fechar chat",
      offline: "Sem conex\u00e3o: as mensagens ser\u00e3o enviadas quando a conex\u00e3o voltar",
      typing: "Digitando", sources: "Fontes", failed: "Ainda n\u00e3o enviada",
      unread: "mensagens n\u00e3o lidas", stop: "N\u00e3o receber mais mensagens", stopWord: "PARAR",
      helpful: "\u00datil", unhelpful: "N\u00e3o ajudou", progress: "Meu progresso",
      progressWord: "progresso", attach: "Enviar uma imagem ou um PDF",
      upFailed: "O arquivo n\u00e3o foi enviado", away: "A equipe est\u00e1 ausente", back: "volta",
      name: "Seu nome", email: "Seu e-mail", start: "Come\u00e7ar o chat",
      rate: "Avalie esta conversa", stars: "de 5", thanks: "Obrigado pela sua avalia\u00e7\u00e3o",
      comment: "Algo a acrescentar? (opcional)", rec: "Gravar uma mensagem de voz",
      recStop: "Parar e enviar", voiceNote: "Mensagem de voz" }
  };
  function pickLang(wanted) {
    var langs = [wanted].concat(navigator.languages || [navigator.language || "en"]);
    for (var i = 0; i < langs.length; i++) {
      var l = String(langs[i] || "").slice(0, 2).toLowerCase();
      if (TEXT[l]) return l;
    }
    return "en";
  }
  var t = TEXT[pickLang(script.getAttribute("data-lang"))];

  // Kept per channel: the visitor token and what was typed but not yet accepted.
  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  var saved = load();
  var state = { token: saved.token || null, identity: saved.identity || null,
    pending: saved.pending || [], profiled: !!saved.profiled, lastSeq: 0, shown: {}, unread: 0, open: false,
    socket: null, retry: 0, stream: null, listeners: {} };
  function save() {
    try {
      localStorage.setItem(KEY, JSON.stringify({ token: state.token, identity: state.identity,
        pending: state.pending, profiled: state.profiled }));
    } catch (e) { /* private mode: the conversation lasts as long as the page */ }
  }
  function emit(name, data) {
    (state.listeners[name] || []).forEach(function (fn) { try { fn(data); } catch (e) {} });
  }

  // ---- DOM, inside a shadow root so the host page's CSS cannot reach it ----
  var host = document.createElement("div");
  host.setAttribute("data-coach-widget", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" +
    ":host{all:initial}*{box-sizing:border-box;font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif}" +
    ".l{position:fixed;bottom:20px;right:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:var(--c);color:#fff;cursor:pointer;box-shadow:0 4px 14px #0003;z-index:2147483646}" +
    ".l svg{width:26px;height:26px;fill:#fff}.left .l,.left .p{right:auto;left:20px}" +
    ".b{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;" +
    "background:#d33;color:#fff;font-size:12px;line-height:20px;padding:0 5px}.b[hidden]{display:none}" +
    ".p{position:fixed;bottom:88px;right:20px;width:370px;height:min(560px,calc(100vh - 110px));" +
    "display:flex;flex-direction:column;background:#fff;color:#222;border-radius:14px;overflow:hidden;" +
    "box-shadow:0 8px 30px #0004;z-index:2147483647}.p[hidden]{display:none}" +
    ".h{background:var(--c);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:10px}" +
    ".h img{width:28px;height:28px;border-radius:50%}.h b{flex:1;font-weight:600}" +
    ".h button{background:none;border:0;color:#fff;font-size:22px;cursor:pointer;line-height:1}" +
    ".h .s{font-size:12px;opacity:.9;text-decoration:underline}.h .s[hidden]{display:none}" +
    ".ch{align-self:flex-start;display:flex;flex-wrap:wrap;gap:6px}.ch button{border:1px solid var(--c);" +
    "background:#fff;color:var(--c);border-radius:16px;padding:5px 12px;cursor:pointer}" +
    ".m{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}" +
    ".fb{align-self:flex-start;display:flex;gap:2px;margin-top:-6px}.fb button{border:0;background:none;" +
    "cursor:pointer;opacity:.4;font-size:13px;padding:2px 4px}.fb button[aria-pressed=true]{opacity:1}" +
    ".g{max-width:85%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".in{align-self:flex-end;background:var(--c);color:#fff}.out{align-self:flex-start;background:#f0f0f3}" +
    ".g.pe{opacity:.6}.g a{color:inherit}.g code{background:#0001;padding:0 3px;border-radius:3px}" +
    ".ty{align-self:flex-start;color:#777;font-size:13px}.ty[hidden],.of[hidden]{display:none}" +
    ".of{background:#fff4d6;color:#6b5300;font-size:13px;padding:6px 12px}" +
    ".aw{background:#f0f0f3;color:#444;font-size:13px;padding:6px 12px}.aw[hidden]{display:none}" +
    "form{display:flex;border-top:1px solid #eee}textarea{flex:1;border:0;padding:12px;resize:none;" +
    "height:48px;outline:none}form button{border:0;background:none;color:var(--c);font-weight:600;" +
    "padding:0 14px;cursor:pointer}form .at,form .mi{padding:0 4px 0 12px;font-size:18px}.at[hidden],.mi[hidden]{display:none}" +
    ".g img{display:block;max-width:100%;max-height:220px;border-radius:8px;margin-bottom:4px}button:focus-visible,textarea:focus-visible{outline:2px solid var(--c)}" +
    "form[hidden]{display:none}.pf{flex-direction:column;gap:8px;padding:12px}.pf p{margin:0}" +
    ".pf input,.rt input{border:1px solid #bbb;border-radius:8px;padding:8px}.pf label{display:flex;gap:8px;font-size:13px}" +
    ".pf button{background:var(--c);color:#fff;border-radius:8px;padding:9px}.pf .e{color:#b00020;font-size:13px}" +
    ".rt{align-self:flex-start;display:flex;flex-direction:column;gap:6px}.fs{display:flex;gap:6px}.rt button{border:1px solid var(--c);background:#fff;" +
    "border-radius:8px;padding:3px 7px;cursor:pointer;font-size:18px}.rt button[aria-pressed=true]{background:var(--c)}" +
    ".rt form{border:0;gap:4px}.rt form button{font-size:14px;color:var(--c)}.rt .n{font-size:13px;color:#555}" +
    "@media (max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}}" +
    ".app .l,.app .x{display:none}.app .p{inset:0;width:auto;height:auto;border-radius:0;" +
    "padding:env(safe-area-inset-top) 0 env(safe-area-inset-bottom)}.pr{display:none}.app .pr{display:block}" +
    "</style>" +
    "<div class='w' style='--c:#3b5bdb'>" +
    "<button class='l' type='button' aria-haspopup='dialog' aria-expanded='false'>" +
    "<svg viewBox='0 0 24 24' aria-hidden='true'><path d='M4 4h16v12H7l-3 3z'/></svg>" +
    "<span class='b' hidden></span></button>" +
    "<div class='p' role='dialog' aria-modal='false' hidden>" +
    "<div class='h'><img alt='' hidden><b></b><button type='button' class='s' hidden></button>" +
    "<button type='button' class='pr'>\ud83d\udcc8</button>" +
    "<button type='button' class='x'>\u00d7</button></div>" +
    "<div class='of' role='status' hidden></div><div class='aw' hidden></div>" +
    "<div class='m' role='log' aria-live='polite' aria-relevant='additions'></div>" +
    "<div class='ty' hidden aria-live='polite'></div>" +
    "<form><button type='button' class='at' hidden>\ud83d\udcce</button><button type='button' class='mi' hidden></button>" +
    "<input type='file' hidden accept='image/png,image/jpeg,image/webp,image/gif,application/pdf'>" +
    "<textarea rows='1' maxlength='4096'></textarea><button type='submit'></button></form>" +
    "<form class='pf' hidden></form>" +
    "</div></div>";
  function $(sel) { return root.querySelector(sel); }
  var wrap = $(".w"), launcher = $(".l"), badge = $(".b"), panel = $(".p"), log = $(".m");
  var input = $("textarea"), form = $("form"), typing = $(".ty"), offline = $(".of"), stop = $(".s");
  stop.textContent = t.stop;
  $(".h b").textContent = t.title;
  $(".x").setAttribute("aria-label", t.close);
  launcher.setAttribute("aria-label", t.open);
  $(".pr").setAttribute("aria-label", t.progress);
  $(".pr").title = t.progress;
  input.setAttribute("placeholder", t.placeholder);
  input.setAttribute("aria-label", t.placeholder);
  form.querySelector("button[type=submit]").textContent = t.send;
  var attach = $(".at"), picker = $("input[type=file]"), uploads = false;
  attach.setAttribute("aria-label", t.attach);
  attach.title = t.attach;
  panel.setAttribute("aria-label", t.title);
  typing.textContent = t.typing + "\u2026";
  offline.textContent = t.offline;


  function bubble(dir, text, extra) {
    var el = document.createElement("div");
    el.className = "g " + dir + (extra ? " " + extra : "");
    el.innerHTML = markdown(text);
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }
  // A message's file, behind its signed link: an image in place, else a link with its name.
  function attachFile(el, m) {
    var f = m.file, a = document.createElement("a"), url = base + f.url;
    if (m.text === "\ud83d\udcce " + f.name) el.textContent = "";
    a.href = url; a.target = "_blank"; a.rel = "noopener"; a.className = "fl";
    if (f.kind === "image") {
      var img = document.createElement("img");
      img.src = url; img.alt = f.name;
      a.appendChild(img);
    } else a.textContent = "\ud83d\udcce " + f.name;
    el.insertBefore(a, el.firstChild);
  }
  function setUnread(n) {
    state.unread = n;
    badge.hidden = n === 0;
    badge.textContent = String(n);
    badge.setAttribute("aria-label", n + " " + t.unread);
  }
  function show(seq, m) {
    if (state.shown[m.id]) return;
    state.shown[m.id] = true;
    if (m.client_id) {
      var local = log.querySelector("[data-client='" + m.client_id.replace(/[^\w-]/g, "") + "']");
      // A file the visitor sent keeps its preview: the stored message confirms it.
      if (local && local.classList.contains("up")) {
        local.className = "g in up";
        local.removeAttribute("title");
        local.setAttribute("data-seq", seq);
        return;
      }
      if (local) local.remove();
      state.pending = state.pending.filter(function (p) { return p.client_id !== m.client_id; });
      save();
    }
    // The visitor's reaction to a message marks that message; it is no message of its own.
    if (m.reacts_to) { marked(m.reacts_to, m.text); return; }
    var sq = log.querySelector(".sq");
    if (sq) sq.remove();
    if (m.direction === "out") dropStream();
    var b = bubble(m.direction, m.text);
    if (m.file) attachFile(b, m);
    b.setAttribute("data-seq", seq);
    if (forms.isSurvey(m)) forms.survey(m);
    else if (m.direction === "out") {
      thumbs(m.id);
      if (m.choices && m.choices.length) choices(m.choices);
    }
    typing.hidden = true;
    if (m.direction === "out") {
      if (!state.open) setUnread(state.unread + 1);
      emit("message", m);
    }
  }
  // Thumbs under each answer: feedback for the creator (a second tap takes it back).
  var THUMBS = [["\ud83d\udc4d", "helpful"], ["\ud83d\udc4e", "unhelpful"]];
  function thumbs(id) {
    var row = document.createElement("div");
    row.className = "fb";
    row.setAttribute("data-for", id);
    THUMBS.forEach(function (th) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = th[0];
      b.setAttribute("aria-label", t[th[1]]);
      b.setAttribute("aria-pressed", "false");
      b.setAttribute("data-emoji", th[0]);
      b.addEventListener("click", function () {
        var on = b.getAttribute("aria-pressed") !== "true";
        var f = { type: "react", client_id: newId(), message_id: id };
        if (on) f.emoji = th[0];
        if (send(f)) marked(id, on ? th[0] : "");
      });
      row.appendChild(b);
    });
    log.appendChild(row);
  }
  function marked(id, emoji) {
    var row = log.querySelector(".fb[data-for='" + String(id).replace(/[^\w-]/g, "") + "']");
    if (!row) return;
    Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-emoji") === emoji));
    });
  }
  function newId() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : String(Date.now()) + Math.random().toString(16).slice(2);
  }
  // Buttons under a check-in; a tap answers with the button's title and id.
  function choices(list) {
    clearChoices();
    var row = document.createElement("div");
    row.className = "ch";
    list.forEach(function (c) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = c.title;
      b.addEventListener("click", function () { submit(c.title, c.id); });
      row.appendChild(b);
    });
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }
  function clearChoices() {
    Array.prototype.forEach.call(log.querySelectorAll(".ch"), function (el) { el.remove(); });
  }
  function frame(p) {
    var f = { type: "message", client_id: p.client_id, text: p.text };
    if (p.choice) f.choice = p.choice;
    return f;
  }
  function showPending(p) {
    var el = bubble("in", p.text, "pe");
    el.setAttribute("data-client", p.client_id);
    el.title = t.failed;
  }

  // ---- the connection: hello, resume from the last sequence number, resend the outbox ----
  function send(frame) {
    if (state.socket && state.socket.readyState === 1) {
      state.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }
  function dropStream() {
    if (state.stream) { state.stream.el.remove(); state.stream = null; }
  }
  function connect() {
    var url = base.replace(/^http/, "ws") + "/widget/ws?channel=" + encodeURIComponent(channel);
    var ws = new WebSocket(url);
    state.socket = ws;
    state.live = false;
    ws.onopen = function () {
      var hello = { type: "hello", v: 1, resume_after: state.lastSeq };
      if (state.identity) hello.identity = state.identity; else if (state.token) hello.token = state.token;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (e) {
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      switch (f.type) {
        case "welcome":
          dropStream();
          state.retry = 0;
          offline.hidden = true;
          state.token = f.visitor_token;
          state.live = true;
          save();
          attach.hidden = !uploads;
          voice.show(uploads);
          // A new visitor fills in the form first (signed-in visitors never do).
          if (prechat && !state.identity && !state.profiled && !f.last_seq) forms.show(true);
          // Behind the form, what waits is sent once it is filled in.
          if (pf.hidden) state.pending.forEach(function (p) { send(frame(p)); });
          emit("ready", {});
          break;
        case "event":
          if (f.seq > state.lastSeq) {
            state.lastSeq = f.seq;
            show(f.seq, f.message);
            send({ type: "ack", seq: f.seq });
          }
          break;
        case "accepted":
          state.pending = state.pending.filter(function (p) { return p.client_id !== f.client_id; });
          save();
          break;
        case "stream_start":
          // A new start (an answer generated again after a restart) replaces any partial text.
          dropStream();
          typing.hidden = false;
          break;
        case "stream_delta":
          typing.hidden = true;
          if (!state.stream || state.stream.id !== f.stream_id) {
            if (state.stream) state.stream.el.remove();
            state.stream = { id: f.stream_id, text: "", el: bubble("out", "", "st") };
            state.stream.el.setAttribute("aria-busy", "true");
          }
          state.stream.text += f.text;
          state.stream.el.innerHTML = markdown(state.stream.text);
          log.scrollTop = log.scrollHeight;
          break;
        case "stream_end":
          typing.hidden = true;
          // The stored answer arrives as an event and replaces the streamed text.
          if (!f.message_id) dropStream();
          break;
        case "typing":
          typing.hidden = !f.on;
          break;
        case "ping":
          send({ type: "pong" });
          break;
        case "error":
          if (f.code === "unauthorized") {
            // A token from another server or a stale identity: start as a new visitor.
            state.token = null; state.identity = null; save();
          }
          // The chat asks for consent first: the message waits for the form.
          if (f.code === "consent_required" && prechat) { state.profiled = false; save(); forms.show(true); }
          emit("error", f);
          break;
      }
    };
    ws.onclose = function () {
      if (state.socket !== ws) return;
      state.socket = null;
      state.live = false;
      if (state.pending.length) offline.hidden = false;
      // Reconnect with backoff and jitter: 0.5 s doubling to 15 s.
      var wait = Math.min(15000, 500 * Math.pow(2, state.retry++)) * (0.5 + Math.random() / 2);
      setTimeout(connect, wait);
    };
  }
  window.addEventListener("online", function () {
    if (!state.socket) { state.retry = 0; connect(); }
  });

  function submit(text, choice) {
    text = text.trim();
    if (!text) return;
    clearChoices();
    var p = { client_id: newId(), text: text };
    if (choice) p.choice = choice;
    state.pending.push(p);
    save();
    showPending(p);
    if (!send(frame(p))) offline.hidden = false;
  }
  // A file: shown at once (an image as its preview), sent as a form with the visitor token
  // (no preflight); the stored message arrives on the socket like any other.
  function upload(file) {
    if (!file || !state.token) return;
    var id = newId();
    var audio = /^audio\//.test(file.type);
    var el = bubble("in", audio ? "\ud83c\udfa4 " + t.voiceNote : "\ud83d\udcce " + file.name, "pe up");
    el.setAttribute("data-client", id);
    if (audio || /^image\//.test(file.type)) {
      var img = document.createElement(audio ? "audio" : "img");
      if (audio) img.controls = true; else img.alt = file.name;
      img.src = URL.createObjectURL(file);
      el.insertBefore(img, el.firstChild);
    }
    var fd = new FormData();
    fd.append("token", state.token);
    fd.append("client_id", id);
    fd.append("file", file, file.name);
    // The upload may have started the conversation: the socket looks for it.
    post("/widget/upload", fd).then(function () { if (state.live) send({ type: "sync" }); })
      .catch(function (err) {
        var im = el.querySelector("img,audio");
        if (im) { URL.revokeObjectURL(im.src); im.remove(); }
        el.title = t.upFailed + ": " + err.message;
        el.className = "g in pe up er";
        el.appendChild(document.createTextNode(" \u26a0 " + t.upFailed));
      });
  }
  // A form (no preflight) to one of the widget's routes; rejects with the problem's detail.
  function post(path, body) {
    return fetch(base + path + "?channel=" + encodeURIComponent(channel), { method: "POST", body: body })
      .then(function (r) {
        if (r.ok) return r.json();
        return r.json().catch(function () { return {}; }).then(function (p) { throw new Error(p.detail || r.status); });
      });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  // The pre-chat form and the rating question (widget-js/forms.js, served in front of this file).
  var prechat = null, pf = $(".pf"), forms = window.__coachWidgetForms({
    el: el, post: post, markdown: markdown, state: state, save: save, send: send, frame: frame,
    texts: function () { return t; }, prechat: function () { return prechat; },
    pf: pf, composer: form, input: input, log: log
  });
  // The microphone (widget-js/voice.js, served in front of this file): a recording is an upload.
  var voiceMax = 120, voice = window.__coachWidgetVoice({
    button: $(".mi"), texts: function () { return t; }, upload: upload,
    max: function () { return voiceMax; }, failed: function (why) { bubble("in", "\u26a0 " + why, "pe er"); }
  });
  attach.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () { upload(picker.files[0]); picker.value = ""; });
  // Stops every check-in, as writing the opt-out word does (the coach confirms).
  stop.addEventListener("click", function () { submit(t.stopWord); });
  // The app's progress button asks for the coachee's summary (as writing "progress" does).
  $(".pr").addEventListener("click", function () { submit(t.progressWord); });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submit(input.value);
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });

  function open() {
    state.open = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    input.focus();
    emit("open", {});
  }
  function close() {
    state.open = false;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
    emit("close", {});
  }
  launcher.addEventListener("click", function () { state.open ? close() : open(); });
  $(".x").addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });

  function restart() {
    var old = state.socket;
    state.socket = null;
    if (old) old.close();
    state.lastSeq = 0;
    state.shown = {};
    state.stream = null;
    log.innerHTML = "";
    greet();
    state.pending.forEach(showPending);
    connect();
  }
  var greeting = null, starters = [];
  // A new visitor's first question in one tap; gone once the conversation has a message.
  function greet() {
    if (greeting) bubble("out", greeting, "gr");
    if (!starters.length) return;
    var row = document.createElement("div");
    row.className = "ch sq";
    starters.forEach(function (q) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = q;
      b.addEventListener("click", function () { submit(q); });
      row.appendChild(b);
    });
    log.appendChild(row);
  }

  // Theme and texts from the channel's public configuration.
  fetch(base + "/v1/widget/config/" + encodeURIComponent(channel)).then(function (r) {
    return r.ok ? r.json() : {};
  }).catch(function () { return {}; }).then(function (c) {
    if (c.language && TEXT[c.language]) t = TEXT[c.language];
    if (c.title) $(".h b").textContent = c.title;
    if (c.color && /^#[0-9a-f]{3,8}$/i.test(c.color)) wrap.style.setProperty("--c", c.color);
    if (c.position === "left") wrap.classList.add("left");
    if (c.avatar_url && /^https:\/\//.test(c.avatar_url)) { $(".h img").src = c.avatar_url; $(".h img").hidden = false; }
    greeting = c.greeting || null;
    starters = (c.starters || []).slice(0, 4).filter(function (q) { return typeof q === "string" && q.trim(); });
    stop.textContent = t.stop;
    stop.hidden = !c.check_ins;
    uploads = c.uploads !== false;
    prechat = c.prechat && typeof c.prechat === "object" ? c.prechat : null;
    attach.hidden = !(uploads && state.token);
    if (c.voice_max_secs > 0) voiceMax = c.voice_max_secs;
    voice.show(uploads && state.token);
    attach.setAttribute("aria-label", t.attach);
    attach.title = t.attach;
    // Outside the team's business hours: said under the header, with when they are back.
    if (c.team && c.team.away) {
      var aw = $(".aw"), back = c.team.back_at && new Date(c.team.back_at);
      var when = "";
      try {
        if (back && !isNaN(back)) when = " \u00b7 " + t.back + " " + back.toLocaleString(TEXT[c.language] ? c.language : undefined, { weekday: "long", hour: "2-digit", minute: "2-digit" });
      } catch (e) {}
      aw.textContent = t.away + when;
      aw.hidden = false;
    }
    log.innerHTML = "";
    greet();
    state.pending.forEach(showPending);
    connect();
  });
  (document.body || document.documentElement).appendChild(host);
  if (app) {
    wrap.classList.add("app");
    open();
    // The service worker keeps the app's shell for offline starts (scope: the app's folder).
    if (navigator.serviceWorker) navigator.serviceWorker.register("sw.js").catch(function () {});
  }

  window.CoachWidget = {
    open: open,
    close: close,
    /** identity: {user_id, issued_at, signature, name?} signed by the creator's server. */
    identify: function (identity) { state.identity = identity; state.token = null; save(); restart(); },
    /** Forget this visitor on this browser (shared machines). */
    reset: function () {
      try { localStorage.removeItem(KEY); } catch (e) {}
      state.token = null; state.identity = null; state.pending = []; state.profiled = false;
      restart();
    },
    on: function (name, fn) { (state.listeners[name] = state.listeners[name] || []).push(fn); },
    send: submit
  };
})();
