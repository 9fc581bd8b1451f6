// Signal monitor dashboard: connection banner and bookmarkable filters for the live feed.
// htmx's hx-ws extension does the websocket work; this file only reacts to its events.
(function () {
  "use strict";

  var FORBIDDEN = 4403;
  var connection = null;  // the hx-ws connection object, kept to update its URL

  function banner(state, text) {
    var el = document.getElementById("live-conn");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  // The filters as a query string (only the ones that are set).
  function filterQuery(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === "string" && value.trim() !== "") params.append(key, value.trim());
    });
    return params.toString();
  }

  // Point the (re)connection at the current filters, so a reconnect keeps what the user chose.
  function syncConnectionUrl() {
    if (!connection || !connection.url) return;
    try {
      var url = new URL(connection.url);
      url.search = window.location.search;
      connection.url = url.toString();
    } catch (e) { /* leave the URL as it is */ }
  }

  document.addEventListener("htmx:ws:before:connection", function (evt) {
    connection = evt.detail.connection;
    syncConnectionUrl();
    if (connection.attempt > 0) banner("reconnecting", "Connection lost: reconnecting (attempt " + connection.attempt + ")…");
  });

  document.addEventListener("htmx:ws:after:connection", function (evt) {
    connection = evt.detail.connection;
    banner("live", "Connected");
  });

  document.addEventListener("htmx:ws:close", function (evt) {
    var detail = evt.detail || {};
    if (detail.reason === "removed") return;
    if (detail.code === FORBIDDEN) {
      banner("denied", "Not allowed: your session may have ended. Reload the page to log in again.");
    } else if (!navigator.onLine) {
      banner("offline", "Offline: the feed resumes when the network is back.");
    } else if (document.hidden) {
      banner("reconnecting", "Paused while the tab is in the background.");
    } else {
      banner("reconnecting", "Connection lost: reconnecting…");
    }
  });

  window.addEventListener("offline", function () {
    banner("offline", "Offline: the feed resumes when the network is back.");
  });

  document.addEventListener("change", function (evt) {
    var form = evt.target && evt.target.closest && evt.target.closest("#live-filters");
    if (!form) return;
    var query = filterQuery(form);
    window.history.replaceState(null, "", query ? "?" + query : window.location.pathname);
    syncConnectionUrl();
  });

  // With the websocket up, filters go over it on "change"; a submit (Enter) must not reload.
  document.addEventListener("submit", function (evt) {
    if (evt.target && evt.target.id === "live-filters" && connection) evt.preventDefault();
  });
})();
