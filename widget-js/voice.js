/* The web widget's voice notes: the microphone button records (MediaRecorder, Opus in Ogg or
 * WebM, whichever the browser makes) until pressed again or `max` seconds, then hands the
 * recording to the widget's upload as a file; the gateway transcribes it and the coach answers
 * it like text. Served in front of widget.js as one script (`GET /widget.js`); widget.js calls
 * this with the button, its texts and the upload. Shown only where the browser can record. */

window.__coachWidgetVoice = function (w) {
  "use strict";
  var rec = null, starting = false, timer = null, button = w.button;
  var can = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder) && !!type();
  function label(on) {
    var t = w.texts();
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.setAttribute("aria-label", on ? t.recStop : t.rec);
    button.title = on ? t.recStop : t.rec;
    button.textContent = on ? "\u25a0" : "\ud83c\udfa4";
  }
  // Opus in Ogg or WebM, what the gateway takes; a browser that makes neither gets no button.
  function type() {
    var types = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm"];
    for (var i = 0; window.MediaRecorder && i < types.length; i++) if (MediaRecorder.isTypeSupported(types[i])) return types[i];
    return "";
  }
  function start() {
    // A second tap while the browser asks for the microphone starts nothing.
    if (starting) return;
    starting = true;
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      starting = false;
      var chunks = [], mime = type();
      rec = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
      rec.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
      rec.onstop = function () {
        stream.getTracks().forEach(function (tr) { tr.stop(); });
        clearTimeout(timer);
        var kind = (rec.mimeType || mime || "audio/webm").split(";")[0];
        rec = null;
        label(false);
        if (!chunks.length) return;
        var ext = kind === "audio/ogg" ? "ogg" : "webm";
        w.upload(new File(chunks, "voice-note." + ext, { type: kind }));
      };
      rec.start();
      label(true);
      // Stopped a little before the limit, so the note is never refused as too long.
      timer = setTimeout(stop, Math.max(1, w.max() - 0.5) * 1000);
    }).catch(function (err) { starting = false; w.failed(err && err.message ? err.message : String(err)); });
  }
  function stop() { if (rec && rec.state !== "inactive") rec.stop(); }
  button.addEventListener("click", function () { if (rec) stop(); else start(); });
  label(false);
  return {
    /** Show the button when files may be sent and the browser can record. */
    show: function (on) { button.hidden = !(on && can); label(!!rec); }
  };
};
