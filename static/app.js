// Baoxiu front-end glue: CSRF header on every htmx request, 4xx messages swapped in place.
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
})();
