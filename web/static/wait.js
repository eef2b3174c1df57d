// The waiting page follows its status by server-sent events, falls back to
// polling the status JSON (jittered, so a crowd does not poll in lockstep),
// and continues into the site by itself once admitted.
(function () {
  "use strict";
  var room = document.getElementById("room");
  if (!room) return;
  var statusURL = room.getAttribute("data-status-url");
  var eventsURL = room.getAttribute("data-events-url");
  var form = document.getElementById("continue");
  var go = document.getElementById("go");
  var done = false;
  var retrying = false;

  function text(id, v) {
    var el = document.getElementById(id);
    if (el && el.textContent !== String(v)) el.textContent = v;
  }
  function eta(s) {
    if (s === null || s === undefined) return "—";
    if (s < 60) return "less than a minute";
    if (s < 120) return "about a minute";
    if (s < 3600) return "about " + Math.round(s / 60) + " minutes";
    return "about " + Math.floor(s / 3600) + "h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
  }
  // show updates the page; it returns true once nothing more will change.
  function show(st) {
    text("position", st.position);
    text("ahead", st.ahead);
    text("eta", eta(st.eta_seconds));
    var pct = st.position > 0 ? Math.min(100, Math.round(100 * st.serving / st.position)) : 0;
    if (st.state === "admitted") pct = 100;
    document.getElementById("bar").value = pct;
    var notice = document.getElementById("notice");
    if (st.state === "paused") { notice.textContent = "Admission is paused for a moment. You keep your place."; notice.hidden = false; }
    else if (st.state === "closed") { notice.textContent = "The room has closed. Check the site for news."; notice.hidden = false; }
    else notice.hidden = true;
    var full = document.getElementById("full");
    if (full) full.hidden = !st.queue_full || st.state !== "waiting";
    if (st.state === "admitted") {
      if (!done) {
        done = true;
        go.hidden = false;
        text("eta", "it is your turn");
        form.submit();
      }
      return true;
    }
    if (st.state === "expired") { done = true; window.location.reload(); return true; }
    // Waiting although the counter has passed this place: the visitor was
    // passed over while the page was away, and is let in at the next
    // chance. Only continue can tell, so ask it now and then.
    if (st.state === "waiting" && st.position > 0 && st.position <= st.serving && !retrying) {
      retrying = true;
      later(function () { done = true; form.submit(); }, 8000);
    }
    return false;
  }
  function later(fn, ms) { setTimeout(fn, ms * (0.75 + Math.random() * 0.5)); }
  function poll() {
    if (done) return;
    fetch(statusURL, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (st) { if (!show(st)) later(poll, 4000); })
      .catch(function () { later(poll, 10000); });
  }
  function listen() {
    var es = new EventSource(eventsURL);
    var got = false;
    es.onmessage = function (e) {
      got = true;
      try { if (show(JSON.parse(e.data))) es.close(); } catch (err) { /* ignore a bad frame */ }
    };
    es.onerror = function () {
      // The browser reconnects by itself; if the stream never worked
      // (a proxy that buffers it), poll instead.
      if (!got) { es.close(); later(poll, 2000); }
    };
  }
  if (room.getAttribute("data-state") === "admitted") { done = true; form.submit(); return; }
  if (window.EventSource && eventsURL) listen(); else later(poll, 2000);
})();
