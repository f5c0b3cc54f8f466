// Wall board: version-carrying polls, SSE "look now", countdowns each second, whole cards only
// with "+N" for the rest, freshness and offline greying, and the alarm sound (WebAudio, no file)
// while alerts are unacknowledged.
(function () {
  "use strict";
  var app = document.getElementById("board-app");
  var live = document.getElementById("board-live");
  if (!app || !live) return;
  var pollMs = (parseFloat(app.dataset.poll) || 2) * 1000;
  var staleAfter = Math.max(3 * pollMs, 6000);
  var skew = (parseInt(app.dataset.now, 10) || Date.now()) - Date.now(); // server clock (test clock too)
  var lastOk = Date.now();
  var tz = app.dataset.tz || "Asia/Shanghai";
  var freshEl = document.getElementById("board-fresh");
  var clockEl = document.getElementById("board-clock");
  var staleEl = document.getElementById("board-stale");
  var soundBtn = document.getElementById("sound-btn");
  var SOUND_KEY = "bx-board-sound";

  function serverNow() { return Date.now() + skew; }
  function version() {
    var body = live.querySelector(".board-body");
    return body ? body.getAttribute("data-version") : "";
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function fill(tpl, values) {
    return tpl.replace(/\{(\w+)\}/g, function (_m, k) { return values[k]; });
  }
  // Same format as server/web/board.py span_text: 05:07 · 1 h 05 min · 2 d 03 h; "+" when overdue.
  function span(ms) {
    var sign = ms < 0 ? "+" : "";
    var s = Math.floor(Math.abs(ms) / 1000);
    if (s < 3600) return sign + pad(Math.floor(s / 60)) + ":" + pad(s % 60);
    if (s < 86400) return sign + fill(app.dataset.fHm || "{h}:{m}", { h: Math.floor(s / 3600), m: pad(Math.floor(s % 3600 / 60)) });
    return sign + fill(app.dataset.fDh || "{d}d {h}h", { d: Math.floor(s / 86400), h: pad(Math.floor(s % 86400 / 3600)) });
  }
  var timeFmt;
  try {
    timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  } catch (e) {
    timeFmt = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  // Digits big, units small (server/web/board.py _small_units); the text holds digits and units only.
  function escapeHtml(t) { return t.replace(/[&<>"]/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); }
  function setSpan(el, text) {
    if (el.getAttribute("data-text") === text) return;
    el.setAttribute("data-text", text);
    el.innerHTML = escapeHtml(text).replace(/([^\d+:]+)/g, "<small>$1</small>");
  }

  function tick() {
    var now = serverNow();
    var i, cds = live.querySelectorAll(".cd[data-deadline]");
    for (i = 0; i < cds.length; i++) {
      // Remaining time counts down; once overdue, it counts up with a "+".
      setSpan(cds[i], span(parseInt(cds[i].getAttribute("data-deadline"), 10) - now));
    }
    var since = live.querySelectorAll("[data-since]");
    for (i = 0; i < since.length; i++) {
      setSpan(since[i], span(Math.max(0, now - parseInt(since[i].getAttribute("data-since"), 10))));
    }
    if (clockEl) clockEl.textContent = timeFmt.format(new Date(now));
    var ago = Math.max(0, Math.round((Date.now() - lastOk) / 1000));
    if (freshEl) freshEl.textContent = (app.dataset.tFresh || "{n}").replace("{n}", ago);
    var stale = Date.now() - lastOk > staleAfter;
    document.body.classList.toggle("stale", stale);
    if (staleEl) {
      staleEl.hidden = !stale;
      if (stale) staleEl.textContent = (app.dataset.tStale || "{n}").replace("{n}", ago);
    }
  }

  // ---- whole cards only: what does not fit is hidden and counted into "+N" ----------------------
  // Laying out all the cards a fragment sends (up to 40 a column, for 4K walls) on every swap is
  // what a push costs most. So a style rule, which a morph leaves alone, keeps each column to the
  // cards it showed last time plus one: only those are laid out and measured. When even that one
  // fits there may be room for more, and the column is measured again with every card.
  var limits = {}; // column id → cards shown after the last fit
  var limitSheet = document.createElement("style");
  document.head.appendChild(limitSheet);
  function writeLimits() {
    var css = "";
    for (var id in limits) {
      css += "#" + id + " .cards > li:nth-child(n+" + (limits[id] + 2) + "){display:none}";
    }
    if (limitSheet.textContent !== css) limitSheet.textContent = css;
  }
  function fit() {
    var cols = live.querySelectorAll(".col"), i, j, k;
    var plan = [];
    for (i = 0; i < cols.length; i++) {
      var list = cols[i].querySelector(".cards"), more = cols[i].querySelector(".more");
      if (!list || !more || !cols[i].id) continue;
      var clipped = list.querySelectorAll(".clipped");
      for (j = 0; j < clipped.length; j++) clipped[j].classList.remove("clipped");
      plan.push({ col: cols[i], list: list, more: more,
                  notSent: parseInt(more.getAttribute("data-more") || "0", 10) || 0 });
    }
    function firstOut(p) { // index of the first card not wholly inside the list (cards.length: none)
      var bottom = p.list.clientHeight - (parseFloat(getComputedStyle(p.list).paddingBottom) || 0);
      for (var n = 0; n < p.ends.length; n++) if (p.ends[n] > bottom) return n;
      return p.ends.length;
    }
    function measure(p) { // the bottoms of the cards laid out now (the limit rule hides the rest)
      var cards = p.list.children, ends = [];
      for (var n = 0; n < cards.length && n <= (p.limit === undefined ? cards.length : p.limit); n++) {
        ends.push(cards[n].offsetTop + cards[n].offsetHeight);
      }
      p.ends = ends;
      p.out = firstOut(p);
    }
    for (k = 0; k < plan.length; k++) plan[k].limit = limits[plan[k].col.id];
    for (k = 0; k < plan.length; k++) measure(plan[k]);
    // The extra card fits too: there is room for more than last time; measure them all.
    var grow = false;
    for (k = 0; k < plan.length; k++) {
      var q = plan[k];
      if (q.limit !== undefined && q.out > q.limit && q.list.children.length > q.limit + 1) {
        delete limits[q.col.id];
        q.limit = undefined;
        grow = true;
      }
    }
    if (grow) {
      writeLimits();
      for (k = 0; k < plan.length; k++) if (plan[k].limit === undefined) measure(plan[k]);
    }
    function label(p) {
      var n = p.list.children.length - p.out + p.notSent;
      setText(p.more, n ? fill(app.dataset.fMore || "+{n}", { n: n }) : "");
    }
    for (k = 0; k < plan.length; k++) label(plan[k]);
    // The "+N" line takes room from the cards: look again where it has just appeared.
    for (k = 0; k < plan.length; k++) plan[k].out = Math.min(plan[k].out, firstOut(plan[k]));
    for (k = 0; k < plan.length; k++) {
      var p = plan[k], cards = p.list.children;
      for (j = p.out; j < cards.length && j <= p.out + 1; j++) cards[j].classList.add("clipped");
      label(p);
      p.col.setAttribute("data-shown", String(p.out));
      limits[p.col.id] = p.out;
    }
    writeLimits();
  }
  // Anything that changes a list's height (the stats panel or sound button arriving, an alert
  // banner, a window resize) fits again; fit itself only hides cards, so it never loops.
  var fitQueued = false;
  function fitSoon() {
    if (fitQueued) return;
    fitQueued = true;
    requestAnimationFrame(function () { fitQueued = false; fit(); });
  }
  var watched = window.WeakSet ? new WeakSet() : null;
  var sizes = window.ResizeObserver ? new ResizeObserver(fitSoon) : null;
  function watchLists() {
    if (!sizes || !watched) return;
    var lists = live.querySelectorAll(".cards");
    for (var i = 0; i < lists.length; i++) {
      if (!watched.has(lists[i])) { watched.add(lists[i]); sizes.observe(lists[i]); }
    }
  }
  window.addEventListener("resize", fitSoon);

  // Every poll carries the version it shows: an unchanged board answers 204 at no cost.
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.elt === live) e.detail.parameters.v = version();
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt !== live) return;
    var xhr = e.detail.xhr;
    if (xhr && xhr.status >= 200 && xhr.status < 300) {
      lastOk = Date.now();
      var at = parseInt(xhr.getResponseHeader("X-Board-Now") || "", 10);
      if (at) skew = at - Date.now();
      tick();
    }
  });
  // The countdown text in the cached HTML is as of its render: correct it before the next paint.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.elt === live || live.contains(e.detail.elt)) { tick(); fit(); watchLists(); alarm(); }
  });

  // ---- push: the stream only says "look now"; polling keeps working without it ----------------
  var es = null;
  function connect() {
    if (!app.dataset.sse || !window.EventSource) return;
    es = new EventSource(app.dataset.sse);
    es.addEventListener("board", function (ev) {
      if (ev.data !== version()) htmx.trigger(live, "board-refresh");
    });
    es.onerror = function () {
      if (es && es.readyState === EventSource.CLOSED) { es = null; setTimeout(connect, 10000); }
    };
  }
  connect();

  // ---- sound: a repeating beep while an alert is unacknowledged ------------------------------
  var sound = window.bxSound(SOUND_KEY), wanted = sound.wanted, audio = sound.audio;
  function beep() {
    app.dataset.beeps = String((parseInt(app.dataset.beeps || "0", 10) || 0) + 1);
    return sound.tones({ type: "square", freq: 880, gain: 0.3, fade: 0.25, stop: 0.3, at: [0, 0.3] });
  }
  function alarm() {
    var ringing = !!live.querySelector("[data-alert-id]");
    app.classList.toggle("ringing", ringing);
    if (ringing && wanted()) beep();
  }
  function showSoundButton() {
    if (!soundBtn) return;
    var needs = !wanted() || (sound.started() && !sound.running());
    if (wanted() && needs) {
      var label = soundBtn.querySelector("span");
      if (label && app.dataset.tSoundAgain) label.textContent = app.dataset.tSoundAgain;
    }
    soundBtn.hidden = !needs;
  }
  if (soundBtn) {
    soundBtn.addEventListener("click", function () {
      sound.enable();
      audio();
      beep();
      setTimeout(showSoundButton, 300);
    });
  }
  if (wanted()) audio(); // may stay suspended until a click (browser autoplay policy)
  setTimeout(showSoundButton, 500);

  tick();
  fit();
  watchLists();
  if (document.fonts && document.fonts.ready) document.fonts.ready.then(fit); // measured again in the real font
  setInterval(tick, 1000);
  setInterval(alarm, 2500);
})();
