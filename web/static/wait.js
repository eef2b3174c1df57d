// The waiting page polls its status JSON (jittered, so a crowd does not poll
// in lockstep) and continues into the site by itself once admitted.
(function () {
  "use strict";
  var room = document.getElementById("room");
  if (!room) return;
  var url = room.getAttribute("data-status-url");
  var form = document.getElementById("continue");
  var go = document.getElementById("go");
  var sent = false;

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
  function show(st) {
    text("position", st.position);
    text("ahead", st.ahead);
    text("eta", eta(st.eta_seconds));
    var pct = st.position > 0 ? Math.min(100, Math.round(100 * st.serving / st.position)) : 0;
    if (st.state === "admitted") pct = 100;
    document.getElementById("bar").style.width = pct + "%";
    var notice = document.getElementById("notice");
    if (st.state === "paused") { notice.textContent = "Admission is paused for a moment. You keep your place."; notice.hidden = false; }
    else if (st.state === "closed") { notice.textContent = "The room has closed. Check the site for news."; notice.hidden = false; }
    else notice.hidden = true;
    if (st.state === "admitted" && !sent) {
      sent = true;
      go.hidden = false;
      text("eta", "it is your turn");
      form.submit();
      return true;
    }
    if (st.state === "expired") { window.location.reload(); return true; }
    return false;
  }
  function next(ms) { setTimeout(poll, ms * (0.75 + Math.random() * 0.5)); }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (st) { if (!show(st)) next(3000); })
      .catch(function () { next(10000); });
  }
  if (room.getAttribute("data-state") === "admitted") { sent = true; form.submit(); return; }
  next(2000);
})();
