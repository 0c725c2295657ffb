// Live progress for the admin, without reloading the page and with no external script.
// Lists: every element with data-task="<uuid>" (a progress bar or a status badge) is refreshed
// from the API every 2 s while any of them is unfinished.
// A task's page (#tc-task-page): its status, progress, stages and estimated completion, the
// buttons its status allows, and the log tail (new lines appended at the page's level) — until
// the task finishes (or is deleted).
(function () {
  "use strict";
  var EVERY = 2000;
  // "gone": a task deleted meanwhile (its API answers 404); nothing more to follow.
  var FINAL = { completed: true, failed: true, cancelled: true, gone: true };
  var GONE = "gone";
  var COLOURS = {
    pending: "#6c757d", processing: "#0d6efd", paused: "#fd7e14",
    completed: "#198754", failed: "#dc3545", cancelled: "#495057"
  };

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : (r.status === 404 ? GONE : null); })
      .catch(function () { return null; });
  }

  function paintBadge(el, status) {
    el.style.background = COLOURS[status] || "#6c757d";
    el.textContent = el.getAttribute("data-label-" + status) || status;
    el.setAttribute("data-status", status);
  }

  function paintBar(el, progress, status) {
    var value = Math.max(0, Math.min(100, Number(progress) || 0));
    el.querySelector(".tc-progress-bar").style.width = value.toFixed(1) + "%";
    el.querySelector("span").textContent = value.toFixed(0) + "%";
    el.title = value.toFixed(1) + "%";
    el.setAttribute("data-status", status);
  }

  function apply(id, status, progress) {
    document.querySelectorAll('[data-task="' + id + '"]').forEach(function (el) {
      if (el.classList.contains("tc-progress")) { paintBar(el, progress, status); }
      if (el.classList.contains("tc-badge")) { paintBadge(el, status); }
    });
  }

  // --- lists -----------------------------------------------------------------------------------

  function unfinished() {
    var seen = {};
    document.querySelectorAll("[data-task]").forEach(function (el) {
      var id = el.getAttribute("data-task");
      if (id && !FINAL[el.getAttribute("data-status") || ""]) { seen[id] = true; }
    });
    return Object.keys(seen);
  }

  function pollList() {
    var ids = unfinished();
    if (!ids.length) { return null; }
    return Promise.all(ids.slice(0, 100).map(function (id) {
      return getJson("/api/v1/statistics/tasks/" + id + "/status").then(function (body) {
        if (body === GONE) {
          document.querySelectorAll('[data-task="' + id + '"]').forEach(function (el) {
            el.setAttribute("data-status", GONE);
          });
        } else if (body && body.success) { apply(id, body.data.status, body.data.progress); }
      });
    }));
  }

  // --- a task's page ---------------------------------------------------------------------------

  // Times as the server writes them on the page, in the page's time zone ("sv-SE" is ISO-like).
  function clock(zone) {
    var time = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
    var full = new Intl.DateTimeFormat("sv-SE", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
    return { time: function (iso) { return time.format(new Date(iso)); },
             full: function (iso) { return full.format(new Date(iso)); } };
  }

  function showTask(page, task, times) {
    apply(task.task_id, task.status, task.progress);
    (task.stage_details || []).forEach(function (stage) {
      var row = document.querySelector('.tc-stage[data-stage="' + CSS.escape(stage.stage) + '"]');
      if (!row) { return; }
      var badge = row.querySelector(".tc-badge");
      if (badge) { paintBadge(badge, stage.status); }
      var bar = row.querySelector(".tc-progress");
      if (bar) { paintBar(bar, stage.progress, stage.status); }
    });
    var eta = document.getElementById("tc-eta");
    if (eta) { eta.textContent = task.estimated_completion ? times.full(task.estimated_completion) : "—"; }
    document.querySelectorAll(".tc-task-action").forEach(function (item) {
      item.hidden = (" " + item.getAttribute("data-statuses") + " ").indexOf(" " + task.status + " ") < 0;
    });
    page.setAttribute("data-status", task.status);
  }

  function appendLogs(section, lines, times, colours) {
    var box = document.getElementById("tc-log-lines");
    var empty = document.getElementById("tc-no-logs");
    if (lines.length && empty) { empty.remove(); }
    lines.forEach(function (line) {
      var row = document.createElement("div");
      row.className = "tc-log tc-log-" + line.level;
      row.style.color = colours[line.level] || "";
      row.style.fontFamily = "monospace";
      row.textContent = times.time(line.timestamp) + " [" + line.level + "] " + line.message;
      box.appendChild(row);
      section.setAttribute("data-after", line.id);
    });
    var total = document.getElementById("tc-log-total");
    if (total) { total.textContent = Number(total.textContent) + lines.length; }
  }

  function tailLogs(taskUrl, times) {
    var section = document.getElementById("tc-logs");
    if (!section || !section.hasAttribute("data-tail")) { return Promise.resolve(); }
    var colours = JSON.parse(document.getElementById("tc-log-colours").textContent);
    var url = taskUrl + "/logs?page_size=100&level=" + encodeURIComponent(section.getAttribute("data-level")) +
      "&after_id=" + encodeURIComponent(section.getAttribute("data-after") || "0");
    return getJson(url).then(function (body) {
      if (body && body.success) { appendLogs(section, body.data.results, times, colours); }
    });
  }

  function pollTaskPage(page) {
    if (FINAL[page.getAttribute("data-status")]) { return null; }
    var taskUrl = page.getAttribute("data-api");
    var times = clock(page.getAttribute("data-time-zone"));
    return getJson(taskUrl).then(function (body) {
      if (body === GONE) {
        page.setAttribute("data-status", GONE);
        document.querySelectorAll(".tc-task-action").forEach(function (item) { item.hidden = true; });
        document.getElementById("tc-task-gone").hidden = false;
        return;
      }
      if (!body || !body.success) { return; }
      showTask(page, body.data, times);
      return tailLogs(taskUrl, times).then(function () {
        if (FINAL[body.data.status]) { document.getElementById("tc-task-finished").hidden = false; }
      });
    });
  }

  function poll() {
    var page = document.getElementById("tc-task-page");
    var work = page ? pollTaskPage(page) : pollList();
    if (work) { work.then(function () { window.setTimeout(poll, EVERY); }); }
  }

  document.addEventListener("DOMContentLoaded", function () { window.setTimeout(poll, EVERY); });
})();
