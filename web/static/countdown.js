// Counts a scheduled event's opening down on the waiting page, once a
// second, as h:mm:ss. Without script the page shows the time left when it
// was rendered (and refreshes itself every 20 s).
(function () {
  "use strict";
  var el = document.getElementById("event-countdown");
  if (!el) return;
  var starts = Number(el.getAttribute("data-starts"));
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var left = Math.max(0, Math.round(starts - Date.now() / 1000));
    var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
    el.textContent = h + ":" + pad(m) + ":" + pad(s);
    if (left > 0) setTimeout(tick, 1000);
  }
  tick();
})();
