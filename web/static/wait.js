// The waiting page follows its status by server-sent events, falls back to
// polling the status JSON (jittered, so a crowd does not poll in lockstep),
// and continues into the site by itself once admitted. Its words come from
// the page's <script type="application/json" id="strings">, in the page's
// language.
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
  var strings = {};
  try { strings = JSON.parse(document.getElementById("strings").textContent); } catch (err) { /* keys show instead */ }

  // t returns the text of key with its {name}s filled in from args.
  function t(key, args) {
    var s = strings[key];
    if (typeof s !== "string") return key;
    return s.replace(/\{([a-z0-9_]+)\}/g, function (m, name) {
      return args && Object.prototype.hasOwnProperty.call(args, name) ? String(args[name]) : m;
    });
  }
  function text(id, v) {
    var el = document.getElementById(id);
    if (el && el.textContent !== String(v)) el.textContent = v;
  }
  function eta(s) {
    if (s === null || s === undefined) return t("wait.eta.unknown");
    if (s < 60) return t("wait.eta.less_than_minute");
    if (s < 120) return t("wait.eta.about_minute");
    if (s < 3600) return t("wait.eta.minutes", { minutes: Math.round(s / 60) });
    return t("wait.eta.hours", { hours: Math.floor(s / 3600), minutes: String(Math.floor(s / 60) % 60).padStart(2, "0") });
  }

  // Screen readers hear the queue move through the live region, at most
  // every announceEvery ms: a busy room changes twice a second, and reading
  // each change out would drown the page.
  var announceEvery = 30000;
  var lastAnnounced = Date.now();
  var pending = null;
  var timer = null;
  function say() {
    clearTimeout(timer);
    timer = null;
    lastAnnounced = Date.now();
    text("announce", pending);
  }
  function announce(msg, now) {
    pending = msg;
    if (now) say();
    else if (!timer) timer = setTimeout(say, Math.max(0, lastAnnounced + announceEvery - Date.now()));
  }

  var lastAhead = null;
  // show updates the page; it returns true once nothing more will change.
  function show(st) {
    text("position", st.position > 0 ? st.position : t("wait.position.drawn"));
    text("ahead", st.ahead);
    text("eta", eta(st.eta_seconds));
    // Progress since this visitor's own join (the server counts it from
    // the ticket), not serving / position since the room began.
    var pct = typeof st.progress === "number" ? Math.max(0, Math.min(100, st.progress)) : 0;
    if (st.state === "admitted") pct = 100;
    document.getElementById("bar").value = pct;
    var notice = document.getElementById("notice");
    if (st.state === "paused") { text("notice", t("wait.notice.paused")); notice.hidden = false; }
    else if (st.state === "closed") { text("notice", t("wait.notice.closed")); notice.hidden = false; }
    else notice.hidden = true;
    var full = document.getElementById("full");
    if (full) full.hidden = !st.queue_full || st.state !== "waiting";
    if (st.state === "admitted") {
      if (!done) {
        done = true;
        go.hidden = false;
        text("eta", t("wait.eta.your_turn"));
        announce(t("wait.announce.admitted"), true);
        form.submit();
      }
      return true;
    }
    if (st.state === "expired") { done = true; window.location.reload(); return true; }
    if (st.position > 0 && st.ahead !== lastAhead) {
      if (lastAhead !== null) announce(t("wait.announce", { ahead: st.ahead, eta: eta(st.eta_seconds) }), false);
      lastAhead = st.ahead;
    }
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
      // (a proxy that buffers it), or a reconnection was refused (nginx's
      // limit_conn answers 429, and the browser then gives up), poll
      // instead.
      if (!got || es.readyState === EventSource.CLOSED) { es.close(); later(poll, 2000); }
    };
  }
  // A room that asks for a proof of work first: a Web Worker solves the
  // challenge (static/solve.js) while the bar shows how far it searched,
  // and the page posts the proof as a form, whose answer is this page with
  // a place, or a page saying why the proof was refused.
  function prove() {
    var bar = document.getElementById("bar");
    var proof = document.getElementById("proof");
    var fail = function () {
      text("checking", t("wait.challenge.failed"));
      announce(t("wait.challenge.failed"), true);
    };
    var ch;
    try { ch = JSON.parse(document.getElementById("challenge").textContent); } catch (err) { fail(); return; }
    var worker;
    try { worker = new Worker(room.getAttribute("data-worker-url")); } catch (err) { fail(); return; }
    worker.onerror = fail;
    worker.onmessage = function (e) {
      var m = e.data || {};
      if (typeof m.progress === "number") { bar.value = Math.min(99, m.progress); return; }
      worker.terminate();
      if (typeof m.number !== "number") { fail(); return; }
      bar.value = 100;
      text("checking", t("wait.challenge.solved"));
      announce(t("wait.challenge.solved"), true);
      document.getElementById("payload").value = btoa(JSON.stringify({
        algorithm: ch.algorithm, challenge: ch.challenge, number: m.number, salt: ch.salt, signature: ch.signature
      }));
      proof.submit();
    };
    worker.postMessage(ch);
  }
  if (room.getAttribute("data-state") === "challenge") { done = true; prove(); return; }
  if (room.getAttribute("data-state") === "admitted") { done = true; form.submit(); return; }
  if (window.EventSource && eventsURL) listen(); else later(poll, 2000);
})();
