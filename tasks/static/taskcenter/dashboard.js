// The dashboard's live body: fetched again every few seconds and swapped in place (no reload),
// while the tab is visible. A failed fetch marks the page stale until the next one succeeds; one
// sent to the login page (the session ended) reloads the page, which then goes there itself.
(function () {
  "use strict";
  var root = document.getElementById("tc-dashboard");
  if (!root) { return; }
  var body = document.getElementById("tc-dashboard-live");
  var live = root.querySelector(".tc-live");
  var every = 1000 * Number(root.getAttribute("data-refresh") || 3);

  function refresh() {
    if (document.hidden) { window.setTimeout(refresh, every); return; }
    fetch(root.getAttribute("data-fragment"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.redirected) { window.location.reload(); }
        if (!r.ok || r.redirected) { throw new Error(r.status); }
        return r.text();
      })
      .then(function (html) { body.innerHTML = html; live.classList.remove("tc-stale"); })
      .catch(function () { live.classList.add("tc-stale"); })
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
