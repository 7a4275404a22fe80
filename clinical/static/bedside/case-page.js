// Case page: while the case is queued or running, ask the server where it stands (a small
// JSON endpoint on this server, nothing else) and show it; reload once it has finished so
// the answer appears. The elapsed time ticks locally between answers.
(function () {
  "use strict";
  var panel = document.getElementById("case-status");
  if (!panel || panel.getAttribute("data-finished") === "true") {
    return;
  }
  var url = panel.getAttribute("data-status-url");
  var elapsed = parseInt(panel.getAttribute("data-elapsed"), 10) || 0;
  var delay = 1000;
  var field = function (name) {
    return panel.querySelector("[data-field=" + name + "]");
  };

  function format(seconds) {
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h > 0 ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function show(state) {
    var label = field("label");
    label.textContent = state.label;
    label.className = "status status-" + state.status;
    field("words").textContent = state.words;
    var detail = field("detail");
    detail.textContent = state.detail;
    detail.hidden = !state.detail;
    var queue = field("queue");
    queue.textContent = state.queue;
    queue.hidden = !state.queue;
    elapsed = state.elapsed_s;
    field("elapsed").textContent = format(elapsed);
    // The tab says where the case stands, so a clinician in another tab sees it finish.
    document.title = document.title.replace(/^[^·]*·/, state.tab_title + " ·");
  }

  // A browser notification when the answer is ready, once the clinician allowed it (asked
  // only on their click). It names no patient: it can show on a locked screen.
  var canNotify = "Notification" in window;
  function offerNotification() {
    if (!canNotify || window.Notification.permission !== "default") {
      return;
    }
    var offer = field("notify");
    offer.hidden = false;
    field("notify-button").addEventListener("click", function () {
      window.Notification.requestPermission().then(function () {
        offer.hidden = true;
      });
    });
  }
  function notifyFinished(state) {
    if (canNotify && window.Notification.permission === "granted") {
      new window.Notification("Bedside: " + state.label, { body: state.words, tag: url });
    }
  }

  function schedule() {
    window.setTimeout(poll, delay);
    delay = Math.min(Math.round(delay * 1.5), 5000);
  }

  function poll() {
    window.fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        if (state === null) {  // the session ended (idle timeout): stop asking
          var note = field("poll-error");
          note.textContent = "Your session has ended. Sign in again to follow this case.";
          note.hidden = false;
          return;
        }
        field("poll-error").hidden = true;
        show(state);
        if (state.finished) {
          notifyFinished(state);
          window.location.reload();
          return;
        }
        schedule();
      })
      .catch(function () {
        field("poll-error").hidden = false;
        schedule();
      });
  }

  window.setInterval(function () {
    elapsed += 1;
    field("elapsed").textContent = format(elapsed);
  }, 1000);
  field("refresh-note").textContent = "This page updates itself every few seconds.";
  offerNotification();
  schedule();
})();

// Review form: the clinician's own differential and plan only matter for "Modify", so they
// are shown only then (without this script they are always shown, and ignored otherwise).
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  var changes = document.getElementById("review-changes");
  if (!form || !changes) {
    return;
  }
  var summary = document.getElementById("review-error-summary");
  if (summary) {
    summary.focus();
  }
  function sync() {
    var chosen = form.querySelector("input[name=decision]:checked");
    changes.hidden = !(chosen && chosen.value === "modify");
  }
  form.addEventListener("change", sync);
  sync();
})();
