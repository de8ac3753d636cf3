/* The web widget's visitor forms: the pre-chat form (name, e-mail, consent) a new visitor fills
 * in before writing, and the rating question of a conversation the team resolved (five faces,
 * then an optional comment). Served in front of widget.js as one script (`GET /widget.js`);
 * widget.js calls this with what the forms need. Both answers go to the gateway as forms
 * (`POST /widget/profile`, `POST /widget/rating`), never as messages. */

window.__coachWidgetForms = function (w) {
  "use strict";
  var el = w.el;
  function showForm(on) {
    var shown = !w.pf.hidden;
    w.pf.hidden = !on;
    w.composer.hidden = on;
    if (!on || shown) return; // a reconnect keeps what was typed
    var pre = w.prechat(), t = w.texts();
    w.pf.innerHTML = "";
    if (pre.message) { var p = el("p"); p.innerHTML = w.markdown(pre.message); w.pf.appendChild(p); }
    [["name", "text", 100], ["email", "email", 254]].forEach(function (f) {
      if (pre[f[0]] === "off") return;
      var i = el("input");
      i.type = f[1]; i.name = f[0]; i.maxLength = f[2];
      i.placeholder = t[f[0]]; i.setAttribute("aria-label", t[f[0]]);
      i.required = pre[f[0]] !== "optional";
      w.pf.appendChild(i);
    });
    if (pre.consent) {
      var l = el("label"), c = el("input"), sp = el("span");
      c.type = "checkbox"; c.name = "consent"; c.required = true;
      sp.innerHTML = w.markdown(pre.consent);
      l.appendChild(c); l.appendChild(sp); w.pf.appendChild(l);
    }
    var e = el("div", "e");
    e.setAttribute("role", "alert");
    w.pf.appendChild(e);
    var b = el("button", "", t.start);
    b.type = "submit";
    w.pf.appendChild(b);
  }
  w.pf.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = new URLSearchParams();
    body.append("token", w.state.token || "");
    Array.prototype.forEach.call(w.pf.querySelectorAll("input"), function (i) {
      if (i.type === "checkbox") { if (i.checked) body.append(i.name, "yes"); }
      else if (i.value.trim()) body.append(i.name, i.value.trim());
    });
    w.post("/widget/profile", body).then(function () {
      w.state.profiled = true;
      w.save();
      showForm(false);
      w.input.focus();
      w.state.pending.forEach(function (p) { w.send(w.frame(p)); });
    }).catch(function (err) { w.pf.querySelector(".e").textContent = err.message; });
  });

  // ---- the rating of a resolved conversation: five faces, then an optional comment ----
  var FACES = ["\ud83d\ude1e", "\ud83d\ude41", "\ud83d\ude10", "\ud83d\ude42", "\ud83d\ude0d"];
  function isSurvey(m) {
    return m.direction === "out" && m.choices && m.choices.length === 5 &&
      m.choices.every(function (c) { return /^csat:[1-5]$/.test(c.id); });
  }
  function survey(m) {
    var t = w.texts();
    var box = el("div", "rt"), row = el("div", "fs"), note = el("div", "n"), more = el("form"), chosen = m.rating || 0;
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", t.rate);
    box.setAttribute("data-survey", m.id);
    note.setAttribute("role", "status");
    function mark() {
      Array.prototype.forEach.call(row.children, function (b, i) { b.setAttribute("aria-pressed", String(i + 1 === chosen)); });
      if (chosen) note.textContent = t.thanks;
    }
    function rate(comment) {
      var body = new URLSearchParams();
      body.append("token", w.state.token || "");
      body.append("survey", m.id);
      body.append("rating", String(chosen));
      if (comment) body.append("comment", comment);
      return w.post("/widget/rating", body).then(function () { note.textContent = t.thanks; return true; },
        function (err) { note.textContent = err.message; });
    }
    FACES.forEach(function (f, i) {
      var b = el("button", "", f);
      b.type = "button";
      b.setAttribute("aria-label", (i + 1) + " " + t.stars);
      b.addEventListener("click", function () { chosen = i + 1; mark(); rate(); more.hidden = false; });
      row.appendChild(b);
    });
    var ci = el("input"), cb = el("button", "", t.send);
    ci.maxLength = 1000; ci.placeholder = t.comment; ci.setAttribute("aria-label", t.comment);
    cb.type = "submit";
    more.hidden = true;
    more.appendChild(ci); more.appendChild(cb);
    more.addEventListener("submit", function (e) {
      e.preventDefault();
      if (ci.value.trim()) rate(ci.value.trim()).then(function (ok) { if (ok) more.hidden = true; });
    });
    box.appendChild(row); box.appendChild(more); box.appendChild(note);
    w.log.appendChild(box);
    mark();
  }
  return { show: showForm, isSurvey: isSurvey, survey: survey };
};
