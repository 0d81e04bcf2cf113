// Ordonis UI, progressive only: every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Times: the server renders UTC; show the browser's local time (exact value in the tooltip).
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) {
      el.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    }
  });
  // Forms that carry the values they were rendered with send only what the user changed
  // (the server compares too; this keeps the request minimal).
  document.querySelectorAll("form[data-only-changed]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("[data-was]").forEach(function (el) {
        if (el.value.replace(/\r\n/g, "\n") === el.getAttribute("data-was").replace(/\r\n/g, "\n")) {
          el.disabled = true;
          var was = form.querySelector("input[type=hidden][name='was_" + el.name + "']");
          if (was) { was.disabled = true; }
        }
      });
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
});
