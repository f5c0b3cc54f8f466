// The engineer's tablet: the alert strip polls with the version it shows (204 while unchanged),
// and rings until the alert is acknowledged once sound was enabled by one tap (remembered).
(function () {
  "use strict";
  var strip = document.getElementById("tablet-alerts");
  if (!strip) return;
  var soundBtn = document.getElementById("sound-btn");
  var SOUND_KEY = "bx-tablet-sound";

  function version() {
    var el = strip.querySelector("[data-version]");
    return el ? el.getAttribute("data-version") : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.elt === strip) e.detail.parameters.v = version();
  });

  var ctx = null;
  function wanted() { try { return localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { return false; } }
  function audio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!ctx) ctx = new AC();
    if (ctx.state === "suspended") ctx.resume();
    return ctx;
  }
  function ring() {
    strip.dataset.rings = String((parseInt(strip.dataset.rings || "0", 10) || 0) + 1);
    var c = audio();
    if (!c || c.state !== "running") return;
    var t = c.currentTime;
    [0, 0.35, 0.7].forEach(function (off) {
      var o = c.createOscillator(), g = c.createGain();
      o.type = "sawtooth";
      o.frequency.value = 988;
      g.gain.setValueAtTime(0.0001, t + off);
      g.gain.exponentialRampToValueAtTime(0.4, t + off + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + off + 0.3);
      o.connect(g);
      g.connect(c.destination);
      o.start(t + off);
      o.stop(t + off + 0.32);
    });
  }
  function ringing() { return !!strip.querySelector("[data-alert]"); }
  function showSoundButton() {
    if (!soundBtn) return;
    soundBtn.hidden = wanted() && !!ctx && ctx.state === "running";
  }
  if (soundBtn) {
    soundBtn.addEventListener("click", function () {
      try { localStorage.setItem(SOUND_KEY, "on"); } catch (e) { /* private mode: this page only */ }
      audio();
      setTimeout(showSoundButton, 300);
    });
  }
  // The browser may keep audio suspended until a touch: any tap on the page resumes it.
  document.addEventListener("pointerdown", function () { if (wanted()) { audio(); setTimeout(showSoundButton, 300); } }, true);
  if (wanted()) audio();
  setTimeout(showSoundButton, 500);
  setInterval(function () {
    var on = ringing();
    document.body.classList.toggle("alerting", on);
    if (on && wanted()) ring();
  }, 2000);
})();
