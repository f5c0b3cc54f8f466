// Triage: one click (or key) opens a small dialog for the focused order or the selection; the
// answer re-renders the list in place. Keys: j/k move, a assign, r reassign, e escalate,
// t transfer, p pause, x select, / filters, ? help. Selection survives polls (static/app.js).
(function () {
  "use strict";
  var list = document.getElementById("triage-rows");
  if (!list) return;
  var bar = document.getElementById("bulk-bar");
  var countEl = document.getElementById("bulk-count");
  var filters = document.getElementById("filters");
  var help = document.getElementById("help-dialog");
  var lastRow = null; // the row keys act on, kept across polls by its number

  function rows() { return Array.from(list.querySelectorAll("tbody tr[data-number]")); }
  function rowOf(el) { return el && el.closest ? el.closest("tr[data-number]") : null; }
  function focused() {
    var r = rowOf(document.activeElement);
    if (r) return r;
    return lastRow ? document.getElementById("t-" + lastRow) : null;
  }
  function selected() { return Array.from(list.querySelectorAll("input.sel:checked")).map(rowOf).filter(Boolean); }
  function allows(row, action) { return (" " + (row.getAttribute("data-allowed") || "") + " ").indexOf(" " + action + " ") >= 0; }

  function syncSelection() {
    var boxes = list.querySelectorAll("input.sel");
    var n = selected().length;
    if (bar) bar.hidden = n === 0;
    if (countEl) countEl.textContent = (countEl.getAttribute("data-template") || "{n}").replace("{n}", n);
    var all = list.querySelector("input.sel-all");
    if (all) {
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    }
    rows().forEach(function (r) { var c = r.querySelector("input.sel"); r.classList.toggle("selected", !!(c && c.checked)); });
  }
  function clearSelection() {
    list.querySelectorAll("input.sel:checked, input.sel-all").forEach(function (c) { c.checked = false; });
    syncSelection();
  }

  // ---- dialogs ----------------------------------------------------------------------------
  var opener = null;
  function openDialog(action, targets) {
    var kind = action === "reassign" ? "assign" : action;
    var dlg = document.getElementById("dlg-" + kind);
    if (!dlg || !targets.length) return false;
    var form = dlg.querySelector("form");
    var one = targets.length === 1;
    form.elements.number.value = one ? targets[0].getAttribute("data-number") : "";
    form.elements.version.value = one ? targets[0].getAttribute("data-version") : "";
    form.elements.selected.value = one ? "" : targets.map(function (r) {
      return r.getAttribute("data-number") + "@" + r.getAttribute("data-version");
    }).join(",");
    dlg.querySelector(".dlg-target").textContent = one
      ? targets[0].getAttribute("data-label")
      : (countEl ? countEl.textContent : targets.length);
    var err = dlg.querySelector(".dlg-error");
    if (err) err.innerHTML = "";
    var reassigning = targets.some(function (r) { return allows(r, "reassign"); });
    var reason = dlg.querySelector(".reassign-only");
    if (reason) {
      reason.hidden = !reassigning;
      reason.querySelector("input").disabled = !reassigning;
      reason.querySelector("input").required = reassigning;
    }
    opener = document.activeElement;
    dlg.showModal();
    var first = dlg.querySelector("select, textarea, input:not([type=hidden]):not([disabled])");
    if (first) first.focus();
    return true;
  }
  function closeDialog(dlg) {
    if (dlg && dlg.open) dlg.close();
  }
  document.addEventListener("close", function (e) {
    if (e.target.classList && e.target.classList.contains("dlg") && opener && document.body.contains(opener)) opener.focus();
  }, true);
  document.addEventListener("click", function (e) {
    var close = e.target.closest("[data-close]");
    if (close) { closeDialog(close.closest("dialog")); return; }
    var act = e.target.closest("button.act[data-action]");
    if (act) { var r = rowOf(act); lastRow = r.getAttribute("data-number"); openDialog(act.getAttribute("data-action"), [r]); return; }
    var bulk = e.target.closest("[data-bulk]");
    if (bulk) {
      var what = bulk.getAttribute("data-bulk");
      if (what === "clear") clearSelection();
      else openDialog(what, selected());
    }
  });
  // The server's answer closes the dialog when it re-rendered the list (done, or the order moved on);
  // a refusal of the input (422, 403) is shown inside the dialog, which stays open as typed.
  document.addEventListener("htmx:afterRequest", function (e) {
    var dlg = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("dialog.dlg");
    if (!dlg || !e.detail.xhr) return;
    var s = e.detail.xhr.status;
    if ((s >= 200 && s < 300) || s === 409) {
      closeDialog(dlg);
      if (dlg.querySelector("form").elements.selected.value) clearSelection();
      dlg.querySelector("form").reset();
    }
  });

  // ---- selection -----------------------------------------------------------------------------
  document.addEventListener("change", function (e) {
    if (e.target.matches("input.sel-all")) {
      var on = e.target.checked;
      list.querySelectorAll("input.sel").forEach(function (c) { c.checked = on; });
    }
    if (e.target.matches("input.sel, input.sel-all")) syncSelection();
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.detail.elt === list || list.contains(e.detail.elt)) syncSelection();
    if (e.detail.elt === list && lastRow && !document.activeElement.closest("dialog")) {
      var again = document.getElementById("t-" + lastRow);
      if (again && document.activeElement === document.body) again.focus();
    }
  });
  list.addEventListener("focusin", function (e) { var r = rowOf(e.target); if (r) lastRow = r.getAttribute("data-number"); });

  // ---- filters: the address keeps them (reload, bookmark); errors clear on a good answer ------
  if (filters) {
    filters.addEventListener("htmx:afterRequest", function (e) {
      if (e.detail.successful) {
        var errs = document.getElementById("filter-errors");
        if (errs) errs.innerHTML = "";
        var q = new URLSearchParams(new FormData(filters));
        Array.from(q.keys()).forEach(function (k) { if (!q.get(k)) q.delete(k); });
        history.replaceState(null, "", "/triage" + (q.toString() ? "?" + q.toString() : ""));
      }
    });
    var clear = document.getElementById("filters-clear");
    if (clear) clear.addEventListener("click", function () {
      Array.from(filters.elements).forEach(function (el) {
        if (el.type === "checkbox") el.checked = false;
        else if (el.tagName === "SELECT") el.value = "";
      });
      htmx.trigger(filters, "submit");
    });
  }
  var helpOpen = document.getElementById("help-open");
  if (helpOpen && help) helpOpen.addEventListener("click", function () { help.showModal(); });

  // ---- keys ------------------------------------------------------------------------------------
  var ACTIONS = { a: "assign", r: "reassign", e: "escalate", t: "transfer", p: "pause" };
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var open = document.querySelector("dialog[open]");
    if (open) {
      // Keyboard all the way: Enter on a picker confirms the dialog (Esc closes it natively).
      if (e.key === "Enter" && e.target.tagName === "SELECT" && open.contains(e.target)) {
        e.preventDefault();
        e.target.form.requestSubmit();
      }
      return;
    }
    if (e.target.matches("input:not([type=checkbox]), select, textarea")) return;
    var all = rows(), row = focused(), i = row ? all.indexOf(row) : -1;
    var k = e.key;
    if (k === "j" || k === "k" || k === "ArrowDown" && row || k === "ArrowUp" && row) {
      var step = k === "j" || k === "ArrowDown" ? 1 : -1;
      var next = i < 0 ? all[0] : all[Math.max(0, Math.min(all.length - 1, i + step))];
      if (next) { next.focus(); next.scrollIntoView({ block: "nearest" }); }
      e.preventDefault();
    } else if (k === "/") {
      var first = filters && filters.querySelector("select");
      if (first) first.focus();
      e.preventDefault();
    } else if (k === "?") {
      if (help) help.showModal();
      e.preventDefault();
    } else if (k === "x" && row) {
      var c = row.querySelector("input.sel");
      if (c) { c.checked = !c.checked; syncSelection(); }
      e.preventDefault();
    } else if (ACTIONS[k]) {
      var action = ACTIONS[k];
      var sel = selected();
      // a / t act on the selection when there is one (bulk), otherwise on the focused order.
      var targets = (k === "a" || k === "t") && sel.length ? sel : row ? [row] : [];
      if (k === "a" && targets.length === 1 && !allows(targets[0], "assign") && allows(targets[0], "reassign")) action = "reassign";
      if (targets.length === 1 && !allows(targets[0], action)) return;
      if (openDialog(action, targets)) e.preventDefault();
    }
  });
  syncSelection();
})();
