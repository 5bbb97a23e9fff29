// Stagecraft dashboards: the log view (server-sent events, service and level filters, search),
// the rollback confirmation dialog, and refreshes after actions. No inline script: the
// Content-Security-Policy allows scripts from /static only.
(function () {
  "use strict";
  var MAX_LINES = 2000;

  function $(id) { return document.getElementById(id); }

  var RANK = { info: 0, warning: 1, error: 2 };

  function lineElement(source, stream, html, text, level) {
    var line = document.createElement("span");
    line.className = "line " + stream + " level-" + (level || "info");
    line.dataset.source = source;
    line.dataset.level = level || "info";
    line.dataset.text = (source + " " + text).toLowerCase();
    var src = document.createElement("span");
    src.className = "src";
    src.textContent = source + " | ";
    var body = document.createElement("span");
    body.className = "text";
    body.innerHTML = html; // escaped by the server (dashboard/ansi.py): only ansi-* spans
    line.appendChild(src);
    line.appendChild(body);
    return line;
  }

  function LogView() {
    this.view = $("log-view");
    this.service = $("log-service");
    this.search = $("log-search");
    this.level = $("log-level");
    var self = this;
    if (this.search) this.search.addEventListener("input", function () { self.filterAll(); });
    if (this.level) this.level.addEventListener("change", function () { self.filterAll(); });
  }
  LogView.prototype.visible = function (line) {
    var wanted = this.service ? this.service.value : "";
    var query = this.search ? this.search.value.trim().toLowerCase() : "";
    var source = line.dataset.source || "";
    if (wanted && this.filtersSource && source !== wanted) return false;
    var least = this.level ? RANK[this.level.value] || 0 : 0;
    if ((RANK[line.dataset.level] || 0) < least) return false;
    return !query || line.dataset.text.indexOf(query) !== -1;
  };
  LogView.prototype.filterAll = function () {
    var lines = this.view.children;
    for (var i = 0; i < lines.length; i++) lines[i].hidden = !this.visible(lines[i]);
  };
  LogView.prototype.add = function (source, stream, html, text, level) {
    var atBottom = this.view.scrollTop + this.view.clientHeight >= this.view.scrollHeight - 20;
    var line = lineElement(source, stream, html, text, level);
    line.hidden = !this.visible(line);
    this.view.appendChild(line);
    while (this.view.children.length > MAX_LINES) this.view.removeChild(this.view.firstChild);
    if (atBottom) this.view.scrollTop = this.view.scrollHeight;
  };
  LogView.prototype.clear = function () { this.view.textContent = ""; };

  function textOf(html) {
    var div = document.createElement("div");
    div.innerHTML = html;
    return div.textContent || "";
  }

  // -- the dev dashboard: one stream of every process's lines and state changes ----------
  function devBoard() {
    var logs = new LogView();
    logs.filtersSource = true;
    if (logs.service) logs.service.addEventListener("change", function () { logs.filterAll(); });
    var status = $("log-status");
    var source = new EventSource("/events");
    source.addEventListener("open", function () { status.textContent = "live"; });
    source.addEventListener("error", function () { status.textContent = "reconnecting…"; });
    source.addEventListener("log", function (e) {
      var entry = JSON.parse(e.data);
      logs.add(entry.name, entry.stream, entry.html, entry.text, entry.level);
    });
    source.addEventListener("state", function () {
      if (window.htmx) window.htmx.trigger("#services", "refresh");
    });
  }

  // -- the environment dashboard: logs of a chosen service, rollback confirmation ---------
  function envBoard() {
    var logs = new LogView();
    logs.filtersSource = false;
    var stream = null;
    var follow = $("log-follow");
    var stop = $("log-stop");
    var token = document.body.dataset.token || "";
    function close() {
      if (stream) { stream.close(); stream = null; }
      follow.disabled = false; stop.disabled = true;
    }
    $("log-form").addEventListener("submit", function (e) {
      e.preventDefault();
      close();
      logs.clear();
      var url = "/logs/stream?service=" + encodeURIComponent(logs.service.value);
      if (token) url += "&token=" + encodeURIComponent(token);
      stream = new EventSource(url);
      follow.disabled = true; stop.disabled = false;
      stream.addEventListener("log", function (ev) {
        var item = JSON.parse(ev.data);
        logs.add(item.source, item.stream, item.html, textOf(item.html), item.level);
      });
    });
    stop.addEventListener("click", close);

    var dialog = $("confirm-rollback");
    document.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest("button.rollback") : null;
      if (!button) return;
      var release = button.dataset.release;
      $("confirm-text").textContent = "Roll back " + button.dataset.env + " to release " +
        release + " (version " + button.dataset.version + ")? Every host runs its images again.";
      $("confirm-release").value = release;
      $("confirm-confirm").value = release;
      $("confirm-yes").textContent = "Roll back to " + release;
      dialog.showModal();
    });
    $("confirm-no").addEventListener("click", function () { dialog.close(); });
    $("confirm-form").addEventListener("htmx:afterRequest", function () { dialog.close(); });
    var settled = null;  // refresh the overview once when a rollback has finished
    document.body.addEventListener("htmx:afterSettle", function () {
      var action = document.querySelector("#action .action");
      if (!action) return;
      var key = action.dataset.target + " " + action.dataset.outcome;
      if (action.dataset.outcome === "running") { settled = null; return; }
      if (settled === key) return;
      settled = key;
      if (window.htmx) window.htmx.trigger("#overview", "refresh");
    });
  }

  // Refusals (400, 403, 409) carry a message for the page: show it where the answer goes.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    if (status === 400 || status === 403 || status === 409) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var board = document.body.dataset.board;
    if (board === "dev") devBoard();
    if (board === "env") envBoard();
  });
})();
