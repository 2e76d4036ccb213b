// asyncgw console: live refresh and small conveniences. The pages work
// without it; with it, parts marked data-part are refreshed whenever the
// page's event stream (data-live on <main>) says something changed.
(function () {
  "use strict";
  var main = document.getElementById("main");

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t instanceof HTMLInputElement && t.hasAttribute("data-select-all")) {
      var boxes = document.querySelectorAll('input[type="checkbox"][name="id"]');
      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = t.checked; }
    }
  });

  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    var msg = (b && b.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });

  var live = main && main.getAttribute("data-live");
  var state = document.getElementById("live-state");
  if (!live || !window.EventSource || !window.fetch) { return; }

  function say(text, on) {
    if (!state) { return; }
    state.textContent = text;
    state.classList.toggle("on", !!on);
  }

  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { headers: { "X-Console-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var parts = doc.querySelectorAll("[data-part]");
        for (var i = 0; i < parts.length; i++) {
          var old = main.querySelector('[data-part="' + parts[i].getAttribute("data-part") + '"]');
          if (old && !old.contains(document.activeElement)) {
            old.replaceWith(document.importNode(parts[i], true));
          }
        }
        main.setAttribute("data-refreshed", String(Date.now()));
      }, function () { say("offline", false); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var es = new EventSource(live);
  es.addEventListener("ready", function () { say("live", true); refresh(); });
  es.addEventListener("refresh", refresh);
  es.addEventListener("error", function () { say("reconnecting…", false); });
  window.addEventListener("pagehide", function () { es.close(); });
})();
