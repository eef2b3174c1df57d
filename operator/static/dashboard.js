// The operator dashboard: it polls the admin API every 2 s (the session
// cookie authorises it), draws each room's last hour as inline SVG, and
// changes rooms through the same API after a confirmation. The browser
// marks every call same-origin (Sec-Fetch-Site, Origin), which the server
// requires of cookie-authorised changes.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) return;
  var api = root.getAttribute("data-api");
  var list = document.getElementById("rooms");
  var template = document.getElementById("room-card");
  var updated = document.getElementById("updated");
  var errorBox = document.getElementById("error");
  var flash = document.getElementById("flash");
  var SVG = "http://www.w3.org/2000/svg";
  var REFRESH_MS = 2000;
  var HISTORY_MS = 10000;
  var cards = {};
  var lastHistory = 0;
  var timer = null;

  // call makes an admin API request the way every control does: from this
  // origin, with the session cookie.
  function call(method, path, body) {
    var headers = { "Accept": "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(api + path, init).then(function (resp) {
      if (resp.status === 401) {
        // The session ended: the page shows the sign-in form again.
        window.location.reload();
        throw new Error("signed out");
      }
      return resp.json().catch(function () { return {}; }).then(function (doc) {
        if (!resp.ok) throw new Error(doc.error_description || "the server answered " + resp.status);
        return doc;
      });
    });
  }

  function num(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString(); }
  function eta(s) {
    if (s === null || s === undefined) return "—";
    if (s < 60) return s + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + " min";
  }
  function setText(el, v) { if (el.textContent !== String(v)) el.textContent = v; }
  function field(card, name) { return card.el.querySelector('[data-field="' + name + '"]'); }

  function showError(err) {
    if (err && err.message === "signed out") return;
    errorBox.textContent = "Could not reach the admin API: " + (err && err.message ? err.message : err);
    errorBox.setAttribute("data-kind", "connection");
    errorBox.hidden = false;
  }
  function say(text) {
    flash.textContent = text;
    flash.hidden = false;
  }

  // card returns the room's card, creating it (from the template) the first
  // time the room is seen.
  function card(room) {
    if (cards[room.id]) return cards[room.id];
    var el = template.content.firstElementChild.cloneNode(true);
    var c = { id: room.id, name: room.name || room.id, el: el, doc: room, busy: false };
    el.querySelectorAll("button[data-action]").forEach(function (b) {
      b.addEventListener("click", function () { changeState(c, b.getAttribute("data-action")); });
    });
    el.querySelectorAll("form[data-form]").forEach(function (f) {
      var input = f.querySelector("input, select");
      input.addEventListener("input", function () { f.dirty = true; });
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        submitForm(c, f.getAttribute("data-form"), input, f);
      });
    });
    list.appendChild(el);
    cards[room.id] = c;
    return c;
  }

  function show(room) {
    var c = card(room);
    setText(field(c, "source"), room.source === "api" ? "created at run time" : "config file");
    var del = field(c, "delete");
    del.hidden = room.source !== "api";
    if (!del.bound) {
      del.bound = true;
      del.addEventListener("click", function () {
        var id = c.id;
        if (!window.confirm("Delete the room " + c.name + "? Its waiting visitors see that it is closed; its sites' logins are refused.")) return;
        call("DELETE", "/rooms/" + encodeURIComponent(id)).then(function () {
          c.el.remove();
          delete cards[id];
          say(c.name + " is deleted.");
          loadCatalog();
        }).catch(actionError(c.name));
      });
    }
    c.doc = room;
    c.name = room.name || room.id;
    var pol = room.policy || {};
    setText(field(c, "name"), c.name);
    setText(field(c, "id"), room.id);
    var state = field(c, "state");
    setText(state, room.state);
    state.className = "state " + room.state;
    field(c, "queue_full").hidden = !room.queue_full;
    var origin = field(c, "origin");
    origin.hidden = !room.origin;
    if (room.origin) {
      setText(origin, "origin " + room.origin.state + (room.origin.latency_ms !== null ? " · " + room.origin.latency_ms + " ms" : ""));
      origin.className = "badge origin-" + room.origin.state;
    }
    setText(field(c, "waiting"), num(room.waiting));
    setText(field(c, "serving"), num(room.serving));
    setText(field(c, "tail"), num(room.tail));
    setText(field(c, "active"), pol.max_active ? num(room.active) + " / " + num(pol.max_active) : num(room.active));
    var measured = room.measured_rate_per_minute;
    setText(field(c, "rate"), measured === null || measured === undefined ? "—" : measured.toFixed(1));
    setText(field(c, "configured"), pol.rate_per_minute ? "configured " + num(pol.rate_per_minute)
      : pol.max_active ? "by capacity only" : "manual");
    setText(field(c, "eta"), eta(room.eta_seconds));
    setText(field(c, "abandoned"), num(room.abandoned));
    rows(c, "lanes", room.lanes, function (l) {
      return [l.id, num(l.weight), num(l.waiting), num(l.codes_issued), num(l.codes_used)];
    });
    rows(c, "events", room.events, function (e) {
      var rate = e.admission && e.admission.rate_per_minute !== undefined ? num(e.admission.rate_per_minute) : "room's";
      return [e.name, e.phase, e.prequeue_from || "—", e.starts_at, e.ends_at, rate];
    });
    var enabled = {
      pause: room.state === "open" || room.state === "passthrough",
      resume: room.state === "paused",
      close: room.state !== "closed",
      open: room.state === "closed" || room.state === "passthrough"
    };
    c.el.querySelectorAll("button").forEach(function (b) {
      var action = b.getAttribute("data-action");
      b.disabled = c.busy || (action !== null && !enabled[action]);
    });
    fill(c, "rate", pol.rate_per_minute || 0);
    fill(c, "max_active", pol.max_active || 0);
    // The proof of work: its mode and the difficulty a new visitor gets.
    var ch = field(c, "challenge");
    ch.hidden = !room.challenge;
    if (room.challenge) {
      setText(ch, room.challenge.difficulty > 0 ? "challenge " + room.challenge.mode + " · " + num(room.challenge.difficulty)
        : "challenge " + room.challenge.mode + " · none now");
      fill(c, "challenge", room.challenge.mode);
    }
  }

  // rows shows a room's list (lanes, events) as table rows, hiding the
  // table when the list is empty; text only, never markup.
  function rows(c, name, list, cells) {
    list = list || [];
    field(c, name + "-box").hidden = list.length === 0;
    var body = field(c, name);
    var want = JSON.stringify(list.map(cells));
    if (body.getAttribute("data-shown") === want) return;
    body.setAttribute("data-shown", want);
    body.textContent = "";
    list.forEach(function (item) {
      var tr = document.createElement("tr");
      cells(item).forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // fill shows the room's current setting in a form the operator is not
  // editing.
  function fill(c, name, v) {
    var f = c.el.querySelector('form[data-form="' + name + '"]');
    var input = f.querySelector("input, select");
    if (!f.dirty && document.activeElement !== input) input.value = v;
  }

  var STATES = {
    pause: { state: "paused", ask: "Pause {room}? Nobody is admitted until you resume it; everyone keeps their place.", done: "{room} is paused." },
    resume: { state: "open", ask: "Resume admission in {room}?", done: "{room} admits again." },
    close: { state: "closed", ask: "Close {room}? It will take no new visitors.", done: "{room} is closed." },
    open: { state: "open", ask: "Open {room} to new visitors?", done: "{room} is open." }
  };

  function fmt(s, c) { return s.replace("{room}", c.name); }

  function act(c, ask, method, path, body, done, form) {
    if (c.busy || !window.confirm(ask)) return;
    c.busy = true;
    c.el.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    call(method, path, body).then(function (doc) {
      if (form) form.dirty = false;
      c.busy = false;
      show(doc);
      errorBox.hidden = true;
      say(done);
    }).catch(function (err) {
      c.busy = false;
      show(c.doc);
      actionError(c.name)(err);
    });
  }

  function changeState(c, action) {
    var s = STATES[action];
    act(c, fmt(s.ask, c), "PATCH", "/rooms/" + encodeURIComponent(c.id), { state: s.state }, fmt(s.done, c));
  }

  function submitForm(c, name, input, form) {
    if (name === "challenge") {
      var mode = input.value;
      act(c, "Set the challenge of " + c.name + " to " + mode + "? New visitors " +
        (mode === "off" ? "will get a place with no proof of work." : mode === "always" ? "will all solve a proof of work first." : "will solve a proof of work while arrivals are high."),
        "PATCH", "/rooms/" + encodeURIComponent(c.id), { challenge_mode: mode }, c.name + ": challenge set to " + mode + ".", form);
      return;
    }
    var v = Number(input.value);
    if (!input.checkValidity() || !isFinite(v)) { input.reportValidity(); return; }
    var path = "/rooms/" + encodeURIComponent(c.id);
    if (name === "rate") {
      act(c, v === 0 ? "Clear the admission rate of " + c.name + "? Only capacity or the admin API will admit."
        : "Set the admission rate of " + c.name + " to " + num(v) + " per minute?",
        "PATCH", path, { rate_per_minute: v }, c.name + ": rate set to " + num(v) + " per minute.", form);
    } else if (name === "max_active") {
      act(c, v === 0 ? "Clear the capacity limit of " + c.name + "?"
        : "Allow at most " + num(v) + " active visitors in " + c.name + "?",
        "PATCH", path, { max_active: v }, c.name + ": capacity set to " + num(v) + ".", form);
    } else if (name === "advance") {
      act(c, "Let the next " + num(v) + " visitors of " + c.name + " in now?",
        "POST", path + "/advance", { count: v }, c.name + ": advanced by " + num(v) + ".", form);
    }
  }

  // Chart: the hour up to the server's clock; waiting as an area on the
  // left scale, admissions per minute as a line on the right one. Gaps
  // (the instance was down, or could not read Redis) break the lines.
  function svg(name, attrs, parent) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(el);
    return el;
  }
  function niceCeil(v) {
    if (v <= 1) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function draw(c, hist) {
    var box = field(c, "chart");
    var samples = hist.samples || [];
    if (samples.length < 2) {
      var p = document.createElement("p");
      p.className = "hint";
      p.textContent = "Collecting: one point every " + hist.interval_seconds + " s.";
      box.replaceChildren(p);
      return;
    }
    // One unit per CSS pixel of the box, so the text stays its size.
    var W = Math.max(320, Math.round(box.clientWidth || 640)), H = 170, L = 48, R = 48, T = 10, B = 22;
    var t1 = hist.now, t0 = t1 - 3600, gap = 2.5 * hist.interval_seconds;
    var points = samples.map(function (s, i) {
      var dt = i > 0 ? s.t - samples[i - 1].t : 0;
      return { t: s.t, waiting: s.waiting, serving: s.serving,
        rate: s.admitted !== null && dt > 0 && dt <= gap ? s.admitted * 60 / dt : null, gap: i === 0 || dt > gap };
    });
    var maxW = niceCeil(Math.max.apply(null, points.map(function (p) { return p.waiting; })));
    var maxR = niceCeil(Math.max.apply(null, points.map(function (p) { return p.rate || 0; })));
    function x(t) { return (L + (t - t0) / 3600 * (W - L - R)).toFixed(1); }
    function yW(v) { return (T + (1 - v / maxW) * (H - T - B)).toFixed(1); }
    function yR(v) { return (T + (1 - v / maxR) * (H - T - B)).toFixed(1); }
    var base = H - B;
    var last = points[points.length - 1];
    var el = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": c.name + ", last hour: " + num(last.waiting) + " waiting now, at most " + num(Math.max.apply(null, points.map(function (p) { return p.waiting; }))) + "; serving " + num(last.serving) + "." });
    [0, 0.5, 1].forEach(function (f) {
      var y = (T + (1 - f) * (H - T - B)).toFixed(1);
      svg("line", { x1: L, x2: W - R, y1: y, y2: y, "class": "grid" }, el);
      svg("text", { x: L - 6, y: y, "class": "axis waiting", "text-anchor": "end", "dominant-baseline": "middle" }, el).textContent = num(maxW * f);
      svg("text", { x: W - R + 6, y: y, "class": "axis admitted", "dominant-baseline": "middle" }, el).textContent = num(maxR * f);
    });
    [[t0, "−60 min", "start"], [t0 + 1800, "−30 min", "middle"], [t1, "now", "end"]].forEach(function (a) {
      svg("text", { x: x(a[0]), y: H - 4, "class": "axis", "text-anchor": a[2] }, el).textContent = a[1];
    });
    var area = "", line = "", rate = "", open = null;
    points.forEach(function (p, i) {
      if (p.gap) {
        if (open !== null) area += "L" + x(points[i - 1].t) + " " + base + "Z";
        area += "M" + x(p.t) + " " + base + "L" + x(p.t) + " " + yW(p.waiting);
        line += "M" + x(p.t) + " " + yW(p.waiting);
        open = i;
      } else {
        area += "L" + x(p.t) + " " + yW(p.waiting);
        line += "L" + x(p.t) + " " + yW(p.waiting);
      }
      if (p.rate !== null) {
        rate += (points[i - 1].rate === null ? "M" + x(points[i - 1].t) + " " + yR(p.rate) : "") + "L" + x(p.t) + " " + yR(p.rate);
      }
    });
    area += "L" + x(last.t) + " " + base + "Z";
    svg("path", { d: area, "class": "area waiting" }, el);
    svg("path", { d: line, "class": "line waiting" }, el);
    if (rate) svg("path", { d: rate, "class": "line admitted" }, el);
    box.replaceChildren(el);
  }

  function loadHistory() {
    lastHistory = Date.now();
    Object.keys(cards).forEach(function (id) {
      call("GET", "/rooms/" + encodeURIComponent(id) + "/history").then(function (hist) {
        draw(cards[id], hist);
      }).catch(showError);
    });
  }

  function actionError(what) {
    return function (err) {
      if (err && err.message === "signed out") return;
      errorBox.textContent = what + ": " + err.message;
      errorBox.setAttribute("data-kind", "action");
      errorBox.hidden = false;
    };
  }

  // Rooms and clients at run time, and the audit log.
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : text;
    row.appendChild(td);
    return td;
  }
  function loadCatalog() {
    call("GET", "/clients").then(function (doc) {
      var body = document.querySelector("#clients tbody");
      var rows = (doc.clients || []).map(function (c) {
        var def = c.definition || {};
        var tr = document.createElement("tr");
        cell(tr, def.id); cell(tr, def.room); cell(tr, c.source); cell(tr, c.public ? "yes" : "no"); cell(tr, c.updated_by || "");
        var td = cell(tr, "");
        if (c.source === "api") {
          var b = document.createElement("button");
          b.type = "button";
          b.className = "danger changes";
          b.textContent = "Delete";
          b.setAttribute("data-client", def.id);
          b.addEventListener("click", function () {
            if (!window.confirm("Delete the client " + def.id + "? Its site can no longer log anyone in.")) return;
            call("DELETE", "/clients/" + encodeURIComponent(def.id)).then(function () {
              say("The client " + def.id + " is deleted.");
              loadCatalog();
            }).catch(actionError(def.id));
          });
          td.appendChild(b);
        }
        return tr;
      });
      body.replaceChildren.apply(body, rows);
    }).catch(showError);
    call("GET", "/audit?limit=20").then(function (doc) {
      var body = document.querySelector("#audit tbody");
      var rows = (doc.entries || []).map(function (e) {
        var tr = document.createElement("tr");
        cell(tr, new Date(e.at).toLocaleString()); cell(tr, e.who); cell(tr, e.action); cell(tr, e.target);
        return tr;
      });
      body.replaceChildren.apply(body, rows);
    }).catch(showError);
  }
  function createFrom(form, textarea, path, extra, done) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var def;
      try { def = JSON.parse(textarea.value); } catch (e) {
        actionError("The definition")(new Error("not JSON: " + e.message));
        return;
      }
      extra(def);
      call("POST", path, def).then(function (doc) {
        errorBox.hidden = true;
        done(doc);
        loadCatalog();
        if (timer !== null) { clearTimeout(timer); refresh(); }
      }).catch(actionError(def.id || "The definition"));
    });
  }
  var secretBox = document.getElementById("secret");
  var newRoom = document.getElementById("new-room");
  if (newRoom) {
    createFrom(newRoom, document.getElementById("room-def"), "/rooms", function () {}, function (doc) {
      say("The room " + doc.definition.id + " is created.");
    });
    createFrom(document.getElementById("new-client"), document.getElementById("client-def"), "/clients", function (def) {
      if (document.getElementById("client-public").checked) def.public = true;
    }, function (doc) {
      say("The client " + doc.definition.id + " is created.");
      if (doc.client_secret) {
        secretBox.textContent = "Secret of " + doc.definition.id + ", shown once: store it now: " + doc.client_secret;
        secretBox.hidden = false;
      }
    });
  }

  function refresh() {
    timer = null;
    if (document.hidden) { schedule(); return; }
    call("GET", "/rooms").then(function (doc) {
      var seen = {};
      (doc.rooms || []).forEach(function (r) { seen[r.id] = true; show(r); });
      Object.keys(cards).forEach(function (id) {
        if (!seen[id]) { cards[id].el.remove(); delete cards[id]; }
      });
      if (errorBox.getAttribute("data-kind") === "connection") errorBox.hidden = true;
      setText(updated, "Updated " + new Date().toLocaleTimeString());
      if (Date.now() - lastHistory >= HISTORY_MS) { loadHistory(); loadCatalog(); }
    }).catch(showError).then(schedule);
  }
  function schedule() { if (timer === null) timer = setTimeout(refresh, REFRESH_MS); }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer !== null) {
      clearTimeout(timer);
      refresh();
    }
  });
  refresh();
})();
