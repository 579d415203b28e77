// Keeps each page's live part current: fetches the page's fragment every second and swaps
// it in, unless the operator is in the middle of something there (a focused field, or, where the
// page says so, ticked checkboxes). Also asks before destructive buttons and drives select-all.
(function () {
  "use strict";
  var PERIOD = 1000;

  function fragmentUrl() {
    var params = new URLSearchParams(window.location.search);
    params.delete("notice");
    params.set("fragment", "1");
    return window.location.pathname + "?" + params.toString();
  }

  function busy(live) {
    var active = document.activeElement;
    if (active && live.contains(active) && active.matches("input, select, textarea")) return true;
    if (live.hasAttribute("data-hold-when-checked") &&
        live.querySelector("input[type=checkbox]:checked")) return true;
    return false;
  }

  function refresh(live) {
    if (document.hidden || busy(live)) return;
    fetch(fragmentUrl(), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected || !response.ok) return null;
        return response.text();
      })
      .then(function (html) {
        if (html !== null && !busy(live)) {
          live.innerHTML = html;
          live.dispatchEvent(new CustomEvent("jobbers:refreshed", {bubbles: true}));
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var confirmText = target.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) event.preventDefault();
    if (target.matches("[data-select-all]")) {
      var boxes = document.querySelectorAll("input[type=checkbox][name=ids]");
      boxes.forEach(function (box) { box.checked = target.checked; });
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelector("[data-live]");
    if (live) window.setInterval(function () { refresh(live); }, PERIOD);
  });
})();
