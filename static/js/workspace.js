// Behaviours of the client workspace's pages. Loaded as a file: the CSP forbids inline script.
(function () {
  "use strict";

  function toastBox() {
    var box = document.querySelector(".toasts");
    if (!box) {
      box = document.createElement("div");
      box.className = "toasts";
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    return box;
  }

  // HX-Trigger: {"toast": {"message": "...", "level": "success" | "error"}}
  document.body.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    if (!detail.message) return;
    var toast = document.createElement("div");
    toast.className = "toast toast-" + (detail.level || "success");
    toast.setAttribute("role", "status");
    toast.textContent = detail.message;
    toastBox().appendChild(toast);
    setTimeout(function () { toast.classList.add("toast-hide"); }, 6000);
    setTimeout(function () { toast.remove(); }, 7000);
  });

  // The queue's bulk selection: "select all", the count, and buttons that need a selection.
  function refreshSelection() {
    var boxes = document.querySelectorAll('input[name="ids"][form="bulk-form"]:not(:disabled)');
    var chosen = Array.prototype.filter.call(boxes, function (box) { return box.checked; }).length;
    var label = document.querySelector("[data-bulk-count]");
    if (label) label.textContent = chosen ? chosen + " selected" : "None selected";
    document.querySelectorAll("[data-bulk-needs-selection]").forEach(function (button) {
      button.disabled = chosen === 0;
    });
    var all = document.querySelector("[data-select-all]");
    if (all) {
      all.checked = chosen > 0 && chosen === boxes.length;
      all.indeterminate = chosen > 0 && chosen < boxes.length;
    }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="ids"][form="bulk-form"]:not(:disabled)').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.matches("[data-select-all], input[name='ids']")) refreshSelection();
    // Period and filter selects without a button: choosing is enough.
    if (target.matches("[data-autosubmit]") && target.form) target.form.requestSubmit();
  });
  document.addEventListener("htmx:afterSettle", refreshSelection);

  // A new rule's Cancel removes its unsaved row.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove-row]");
    if (button) {
      var row = button.closest("tr");
      if (row) row.remove();
    }
  });

  // Confirm before HTMX sends a form whose submit button asks for it (data-confirm on the button).
  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail && event.detail.triggeringEvent;
    var submitter = trigger && trigger.submitter;
    var question = submitter && submitter.getAttribute("data-confirm");
    if (!question) return;
    event.preventDefault();
    if (window.confirm(question)) event.detail.issueRequest(true);
  });
})();
