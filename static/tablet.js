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

  var sound = window.bxSound(SOUND_KEY), wanted = sound.wanted, audio = sound.audio;
  function ring() {
    strip.dataset.rings = String((parseInt(strip.dataset.rings || "0", 10) || 0) + 1);
    sound.tones({ type: "sawtooth", freq: 988, gain: 0.4, fade: 0.3, stop: 0.32, at: [0, 0.35, 0.7] });
  }
  function ringing() { return !!strip.querySelector("[data-alert]"); }
  function showSoundButton() {
    if (!soundBtn) return;
    soundBtn.hidden = wanted() && sound.running();
  }
  if (soundBtn) {
    soundBtn.addEventListener("click", function () {
      sound.enable();
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
