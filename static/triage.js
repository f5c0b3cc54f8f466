// Triage keyboard: j/k move between rows, a focuses the row's engineer select, e escalates,
// x toggles selection (bulk assign). htmx prompts carry the reason (hx-prompt → HX-Prompt).
(function () {
  "use strict";
  function rows() { return Array.from(document.querySelectorAll(".triage-table tbody tr[data-number]")); }
  function current() { return document.activeElement && document.activeElement.closest("tr[data-number]"); }
  document.addEventListener("keydown", function (e) {
    if (e.target.matches("input, select, textarea")) return;
    var all = rows(), row = current(), i = all.indexOf(row);
    if (e.key === "j" || e.key === "k") {
      var next = all[Math.max(0, Math.min(all.length - 1, i + (e.key === "j" ? 1 : -1)))] || all[0];
      if (next) next.focus();
      e.preventDefault();
    } else if (row && e.key === "a") {
      var sel = row.querySelector("select[name=assignee_id]"); if (sel) sel.focus(); e.preventDefault();
    } else if (row && e.key === "e") {
      var b = row.querySelector("button.act-escalate"); if (b) b.click();
    } else if (row && e.key === "x") {
      var c = row.querySelector("input.sel"); if (c) { c.checked = !c.checked; sync(); }
    }
  });
  function sync() {
    var v = Array.from(document.querySelectorAll("input.sel:checked")).map(function (c) { return c.value; });
    var f = document.getElementById("bulk-selected"); if (f) f.value = v.join(",");
  }
  document.addEventListener("change", function (e) { if (e.target.matches("input.sel")) sync(); });
  // The reason typed into an hx-prompt travels as a form field.
  document.addEventListener("htmx:configRequest", function (e) {
    var p = e.detail.headers["HX-Prompt"];
    if (p) e.detail.parameters["reason"] = p;
  });
})();
