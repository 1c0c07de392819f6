/*
 * failtrack-beacon.js: report what a recruiter does in an ATS page to failtrack.
 *
 * Embed (docs/beacon.md):
 *   <script src="https://failtrack.example.com/static/integrations/failtrack-beacon.js"
 *           data-token="ftk_..." data-application-id="app-123" data-job-id="job-9"
 *           data-actor-id="user-42" data-actor-role="recruiter" defer></script>
 *
 * With data-application-id set, a view starts when the script loads and is reported once,
 * with how long the page was visible, when the page is hidden or left. Pages that change
 * application without reloading call the API instead:
 *   failtrack.view({applicationId, jobId, actorId, actorRole})  start a view (ends the last)
 *   failtrack.end()                                             report the current view now
 *
 * Only ATS ids are sent, never names or e-mail addresses. No dependencies, no build step.
 */
(function (window, document) {
  "use strict";

  var script = document.currentScript;
  if (!script || window.failtrack) {
    return;
  }
  var data = script.dataset;
  var token = data.token || "";
  var endpoint = data.endpoint || new URL("/api/v1/beacon/", script.src).href;
  var current = null;

  function randomId() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function send(payload) {
    var body = JSON.stringify(payload);
    // A string body goes as text/plain: a "simple" request, no CORS preflight needed.
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, body)) {
      return true;
    }
    if (window.fetch) {
      window.fetch(endpoint, {
        method: "POST",
        body: body,
        keepalive: true,
        mode: "no-cors",
        credentials: "omit",
        headers: { "Content-Type": "text/plain" },
      });
      return true;
    }
    return false;
  }

  function visibleMs(view) {
    var total = view.visibleMs;
    if (view.visibleSince !== null) {
      total += Date.now() - view.visibleSince;
    }
    return Math.max(0, Math.round(total));
  }

  function end() {
    var view = current;
    current = null;
    if (!view || !token) {
      return false;
    }
    var payload = {
      token: token,
      id: view.id,
      kind: "application.viewed",
      application_id: view.applicationId,
      actor: { id: view.actorId, role: view.actorRole },
      duration_ms: visibleMs(view),
    };
    if (view.jobId) {
      payload.job_id = view.jobId;
    }
    return send(payload);
  }

  function view(options) {
    end();
    options = options || {};
    if (!options.applicationId || !options.actorId) {
      return null;
    }
    paused = null;
    current = {
      options: options,
      id: randomId(),
      applicationId: String(options.applicationId),
      jobId: options.jobId ? String(options.jobId) : "",
      actorId: String(options.actorId),
      actorRole: options.actorRole || "recruiter",
      visibleMs: 0,
      visibleSince: document.visibilityState === "hidden" ? null : Date.now(),
    };
    return current.id;
  }

  var paused = null; // the view a hidden tab ended; coming back starts a new one

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      if (current) {
        // The last moment a page is sure to run: report now (sendBeacon survives unload).
        paused = current.options;
        end();
      }
    } else if (current && current.visibleSince === null) {
      current.visibleSince = Date.now();
    } else if (!current && paused) {
      view(paused);
    }
  });
  window.addEventListener("pagehide", end);

  window.failtrack = { view: view, end: end, endpoint: endpoint };

  if (data.applicationId) {
    view({
      applicationId: data.applicationId,
      jobId: data.jobId,
      actorId: data.actorId,
      actorRole: data.actorRole,
    });
  }
})(window, document);
