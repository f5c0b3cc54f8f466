// Baoxiu front-end glue: CSRF header on every htmx request, 4xx messages swapped in place, polls
// that never undo what the user is doing, and countdowns that tick between polls.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    var t = csrf();
    if (t) e.detail.headers["X-CSRF-Token"] = t;
    var target = e.detail.elt && e.detail.elt.closest("[data-error-target]");
    if (target) e.detail.headers["X-Error-Target"] = target.getAttribute("data-error-target");
  });
  // htmx 2: show refusals (403/409/422/429) where the server retargets them; keep 204 as "no change".
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "304", swap: false },
    { code: "[23]..", swap: true },
    { code: "401", swap: false },
    { code: "4..", swap: true, error: false },
    { code: "5..", swap: false, error: true },
  ];
  htmx.config.defaultSwapStyle = "innerHTML";
  htmx.config.historyCacheSize = 0;
  htmx.config.scrollIntoViewOnBoost = false;

  // ---- polls keep what the user is doing ---------------------------------------------------
  // A polled list is morphed (idiomorph) every few seconds. Without care each morph would reset
  // what the server does not know: typed values, open dialogs (<details>), ticked boxes. So:
  //  - a form the user typed in, and an open <details>, are "engaged": a morph leaves them whole;
  //  - a selection box keeps its tick; the focused field keeps its value;
  //  - a message shown in a [data-msg-slot] stays MSG_KEEP_MS even though the next poll has none.
  // An engaged form is released when the server answers it with a new list (2xx or 409).
  var MSG_KEEP_MS = 15000;
  var engaged = new WeakSet();
  function engage(e) {
    var t = e.target;
    if (!t || !t.closest || t.matches("input.sel, input.sel-all") || t.closest("#filters")) return;
    var form = t.closest("form");
    if (form) engaged.add(form);
  }
  document.addEventListener("input", engage, true);
  document.addEventListener("change", engage, true);
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (d && d.tagName === "DETAILS") {
      if (d.open) engaged.add(d);
      else engaged.delete(d);
    }
  }, true);
  function release(elt) {
    var form = elt && elt.closest && elt.closest("form");
    if (!form) return;
    engaged.delete(form);
    var d = form.closest("details");
    if (d) { engaged.delete(d); d.open = false; }
  }
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if ((status >= 200 && status < 300) || status === 409) release(e.detail.requestConfig && e.detail.requestConfig.elt);
    // Lists are always morphed, whatever swap the action form asked for.
    var t = e.detail.target;
    if (t && (t.id === "tablet-list" || t.id === "triage-rows") && e.detail.shouldSwap) {
      e.detail.swapOverride = "morph:innerHTML";
    }
  });
  function young(el) {
    var at = parseInt(el.getAttribute("data-msg-at") || "0", 10);
    if (!at) { el.setAttribute("data-msg-at", String(Date.now())); return true; }
    return Date.now() - at < MSG_KEEP_MS;
  }
  function keepMessage(old) {
    return old.hasAttribute("data-msg-slot") && !!old.firstElementChild && young(old);
  }
  if (window.Idiomorph && Idiomorph.defaults) {
    var cb = Idiomorph.defaults.callbacks;
    cb.beforeNodeMorphed = function (old, fresh) {
      if (old.nodeType !== 1) return true;
      if (engaged.has(old)) return false;
      // Kept while young; once old (or replaced by a new message) the morph drops it and its mark.
      if (!fresh.firstElementChild && keepMessage(old)) return false;
      return true;
    };
    cb.beforeNodeRemoved = function (old) {
      // A conflict's card for an order that left my lists stays a while, with its message.
      return !(old.nodeType === 1 && old.classList.contains("gone") && young(old));
    };
    cb.beforeAttributeUpdated = function (name, node) {
      if (name === "checked" && node.matches && node.matches("input.sel, input.sel-all")) return false;
      if (name === "value" && node === document.activeElement) return false;
      if (name === "open" && node.tagName === "DETAILS" && node.open) return false;
      return true;
    };
  }

  // ---- countdowns: the server renders the band, the browser counts the seconds ------------
  var skew = 0; // server clock minus this browser's (the test clock included)
  var dayUnit = "d";
  var overdue = "";
  function readNow() {
    var el = document.querySelector("[data-now]");
    var at = el ? parseInt(el.getAttribute("data-now"), 10) : 0;
    if (at) skew = at - Date.now();
    if (el && el.getAttribute("data-day")) dayUnit = el.getAttribute("data-day");
    if (el && el.getAttribute("data-overdue")) overdue = el.getAttribute("data-overdue");
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  // Same format as server/board/view.py format_span.
  function span(ms, dayUnit) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400); s -= d * 86400;
    var h = Math.floor(s / 3600); s -= h * 3600;
    var m = Math.floor(s / 60); s -= m * 60;
    if (d) return d + dayUnit + " " + pad(h) + ":" + pad(m);
    if (h) return h + ":" + pad(m) + ":" + pad(s);
    return pad(m) + ":" + pad(s);
  }
  function tick() {
    var now = Date.now() + skew;
    var cds = document.querySelectorAll(".cd[data-deadline-ms]");
    for (var i = 0; i < cds.length; i++) {
      var left = parseInt(cds[i].getAttribute("data-deadline-ms"), 10) - now;
      var text = span(left, dayUnit);
      if (cds[i].textContent !== text) cds[i].textContent = text;
      // Past the deadline before the next poll: say so now (the poll brings the server's band).
      var pill = cds[i].closest(".deadline");
      if (left <= 0 && pill && overdue && !pill.classList.contains("band-breached")) {
        pill.classList.add("band-breached");
        var lab = pill.querySelector(".cd-label");
        if (lab) lab.textContent = overdue;
      }
    }
  }
  document.addEventListener("htmx:afterSettle", function () { readNow(); tick(); });
  document.addEventListener("DOMContentLoaded", function () { readNow(); tick(); setInterval(tick, 1000); });
})();

// The alarm sound of the wall and the tablet (WebAudio, no file): enabled by one tap and
// remembered under `key`; the browser may keep it suspended until a touch resumes it.
window.bxSound = function (key) {
  var ctx = null;
  function wanted() { try { return localStorage.getItem(key) === "on"; } catch (e) { return false; } }
  function enable() { try { localStorage.setItem(key, "on"); } catch (e) { /* private mode: this page only */ } }
  function audio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!ctx) ctx = new AC();
    if (ctx.state === "suspended") ctx.resume();
    return ctx;
  }
  // One burst: a tone of `type`/`freq` at each offset in `at`, fading over `fade` s, cut at `stop` s.
  function tones(spec) {
    var c = audio();
    if (!c || c.state !== "running") return false;
    var t = c.currentTime;
    spec.at.forEach(function (off) {
      var o = c.createOscillator(), g = c.createGain();
      o.type = spec.type;
      o.frequency.value = spec.freq;
      g.gain.setValueAtTime(0.0001, t + off);
      g.gain.exponentialRampToValueAtTime(spec.gain, t + off + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + off + spec.fade);
      o.connect(g);
      g.connect(c.destination);
      o.start(t + off);
      o.stop(t + off + spec.stop);
    });
    return true;
  }
  return {
    wanted: wanted, enable: enable, audio: audio, tones: tones,
    started: function () { return !!ctx; },
    running: function () { return !!ctx && ctx.state === "running"; },
  };
};
