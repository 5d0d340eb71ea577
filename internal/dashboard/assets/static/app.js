// rollwave dashboard: live updates over server-sent events, bake
// countdowns. No framework, nothing loaded from elsewhere (the page's
// Content-Security-Policy allows scripts from this server only).
(function () {
  'use strict';
  var view = document.getElementById('view');
  var conn = document.getElementById('conn');
  window.rwSwaps = 0;

  // Server clock minus browser clock, from the page's data-now: bake
  // countdowns follow the server's deadline whatever the browser's clock.
  var skew = view && view.dataset.now ? Number(view.dataset.now) - Date.now() : 0;

  function fmt(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s = s % 60;
    return (h ? h + 'h' : '') + (h || m ? m + 'm' : '') + s + 's';
  }

  function tick() {
    if (!view) { return; }
    var now = Date.now() + skew;
    view.querySelectorAll('[data-deadline]').forEach(function (el) {
      var left = Number(el.dataset.deadline) - now;
      el.textContent = left > 0 ? fmt(left) : 'ending';
    });
  }

  // swap brings the view up to date with a fragment from the server.
  // When the fragment has the same shape as the last one, only the parts
  // that changed are replaced, so a form the user is filling in (the
  // action buttons) stays as it is; otherwise the whole view is
  // replaced, keeping what was typed into fields with the same id.
  var last = [];
  function swap(html) {
    var t0 = performance.now();
    var tpl = document.createElement('template');
    tpl.innerHTML = html;
    var next = tpl.content.firstElementChild;
    var cur = view.firstElementChild;
    var parts = next ? Array.prototype.slice.call(next.children) : [];
    var html2 = parts.map(function (el) { return el.outerHTML; });
    if (cur && next && cur.id === next.id && cur.children.length === parts.length && last.length === parts.length) {
      Array.prototype.slice.call(next.attributes).forEach(function (a) { cur.setAttribute(a.name, a.value); });
      var kids = Array.prototype.slice.call(cur.children);
      parts.forEach(function (el, i) {
        if (html2[i] !== last[i]) { cur.replaceChild(el, kids[i]); }
      });
    } else {
      var keep = {};
      view.querySelectorAll('input[id], textarea[id]').forEach(function (el) {
        if (el.type === 'checkbox') { keep[el.id] = el.checked; } else if (el.value) { keep[el.id] = el.value; }
      });
      view.replaceChildren.apply(view, Array.prototype.slice.call(tpl.content.childNodes));
      Object.keys(keep).forEach(function (id) {
        var el = document.getElementById(id);
        if (!el) { return; }
        if (el.type === 'checkbox') { el.checked = keep[id]; } else { el.value = keep[id]; }
      });
    }
    last = html2;
    tick();
    window.rwSwaps++;
    window.rwLastSwapMs = performance.now() - t0;
  }

  function setConn(text, cls) {
    if (!conn) { return; }
    conn.textContent = text;
    conn.className = 'conn ' + (cls || '');
  }

  // What the server sent for each part of the view, as the page loaded.
  if (view && view.firstElementChild) {
    last = Array.prototype.slice.call(view.firstElementChild.children).map(function (el) { return el.outerHTML; });
  }
  tick();
  setInterval(tick, 1000);

  var src = view && view.dataset.src;
  if (!src || !window.EventSource) { return; }
  var es = new EventSource(src);
  es.addEventListener('view', function (e) { swap(e.data); });
  es.addEventListener('status', function (e) {
    setConn(e.data, e.data.indexOf('stale') === 0 ? 'stale' : 'live');
    window.rwStatus = e.data;
  });
  es.addEventListener('auth', function () {
    es.close();
    location.href = document.querySelector('a.brand').getAttribute('href') + 'login?next=' + encodeURIComponent(location.pathname + location.search);
  });
  es.onerror = function () { setConn('reconnecting…', 'stale'); window.rwStatus = 'reconnecting'; };
})();
