// Live progress for the admin: every element with data-task="<uuid>" (a progress bar or a status
// badge) is refreshed from the API every 2 s while any of them is unfinished. No external scripts.
(function () {
  "use strict";
  var FINAL = { completed: true, failed: true, cancelled: true };
  var COLOURS = {
    pending: "#6c757d", processing: "#0d6efd", paused: "#fd7e14",
    completed: "#198754", failed: "#dc3545", cancelled: "#495057"
  };

  function ids() {
    var seen = {};
    document.querySelectorAll("[data-task]").forEach(function (el) {
      var id = el.getAttribute("data-task");
      if (id && !FINAL[el.getAttribute("data-status") || ""]) { seen[id] = true; }
    });
    return Object.keys(seen);
  }

  function apply(task) {
    document.querySelectorAll('[data-task="' + task.task_id + '"]').forEach(function (el) {
      if (el.classList.contains("tc-progress")) {
        var value = Math.max(0, Math.min(100, task.overall_progress));
        el.querySelector(".tc-progress-bar").style.width = value.toFixed(1) + "%";
        el.querySelector("span").textContent = value.toFixed(0) + "%";
        el.title = value.toFixed(1) + "%";
      }
      if (el.classList.contains("tc-badge")) {
        el.style.background = COLOURS[task.status] || "#6c757d";
        el.textContent = el.getAttribute("data-label-" + task.status) || task.status;
      }
      el.setAttribute("data-status", task.status);
    });
  }

  function poll() {
    var pending = ids();
    if (!pending.length) { return; }
    Promise.all(pending.slice(0, 100).map(function (id) {
      return fetch("/api/v1/statistics/tasks/" + id + "/status", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body || !body.success) { return; }
          apply({ task_id: id, status: body.data.status, overall_progress: body.data.progress });
        })
        .catch(function () {});
    })).then(function () { window.setTimeout(poll, 2000); });
  }

  document.addEventListener("DOMContentLoaded", function () { window.setTimeout(poll, 2000); });
})();
