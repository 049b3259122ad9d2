// Small behaviours of the page shell. No inline scripts anywhere (CSP forbids them).
(function () {
  "use strict";
  // Close an open menu when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
  // Toasts fade after a few seconds; they stay in the DOM for screen readers until then.
  function fadeToasts(root) {
    root.querySelectorAll(".toast").forEach(function (toast) {
      setTimeout(function () { toast.classList.add("toast-hide"); }, 6000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fadeToasts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { fadeToasts(event.target); });
  // Copy buttons: data-copy names the input whose value goes to the clipboard; the button says it worked.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.select();
      document.execCommand("copy");
      done();
    }
  });
  // A box that scrolls but holds nothing focusable cannot be scrolled from the keyboard: make the
  // box itself focusable (WCAG 2.1.1). Checked on load and in every fragment htmx swaps in.
  var FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";
  function reachScrollBoxes(root) {
    var boxes = root.querySelectorAll ? root.querySelectorAll("main *") : [];
    Array.prototype.forEach.call(boxes, function (box) {
      var style = getComputedStyle(box);
      var scrolls = (/(auto|scroll)/.test(style.overflowY) && box.scrollHeight > box.clientHeight + 1) ||
        (/(auto|scroll)/.test(style.overflowX) && box.scrollWidth > box.clientWidth + 1);
      if (scrolls && !box.hasAttribute("tabindex") && !box.querySelector(FOCUSABLE)) box.setAttribute("tabindex", "0");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { reachScrollBoxes(document); });
  document.addEventListener("htmx:afterSwap", function () { reachScrollBoxes(document); });
  // Buttons with data-confirm ask before a destructive action.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
