// rollwave dashboard: live updates over server-sent events, bake
// countdowns. No framework, nothing loaded from elsewhere (the page's
// Content-Security-Policy allows scripts from this server only).
(function () {
  'use strict';
  var view = document.getElementById('view');
  var conn = document.getElementById('conn');
  window.rwSwaps = 0;

  // Server clock minus browser clock, from the release view's data-now.
  var skew = 0;
  function readSkew() {
    var el = view && view.querySelector('[data-now]');
    if (el) { skew = Number(el.dataset.now) - Date.now(); }
  }

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

  // swap replaces the view, keeping what the user typed into a form and
  // which field had the focus.
  function swap(html) {
    var t0 = performance.now();
    var keep = {};
    var focused = document.activeElement && view.contains(document.activeElement) ? document.activeElement.id : '';
    view.querySelectorAll('input[id], textarea[id]').forEach(function (el) {
      if (el.type === 'checkbox') { keep[el.id] = el.checked; } else if (el.value) { keep[el.id] = el.value; }
    });
    view.innerHTML = html;
    Object.keys(keep).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) { return; }
      if (el.type === 'checkbox') { el.checked = keep[id]; } else { el.value = keep[id]; }
    });
    if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
    readSkew();
    tick();
    window.rwSwaps++;
    window.rwLastSwapMs = performance.now() - t0;
  }

  function setConn(text, cls) {
    if (!conn) { return; }
    conn.textContent = text;
    conn.className = 'conn ' + (cls || '');
  }

  readSkew();
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
