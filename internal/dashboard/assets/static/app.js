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

  // morph brings the children of cur in line with those of next, node by
  // node: a node of the same kind (same tag and id) is kept and only its
  // changed attributes and text are set; anything else is replaced.
  // A live update of 300 hosts out of 1,000 thus touches 300 tiles' class
  // and data attributes and nothing else: no element is re-created, the
  // table is not laid out afresh, and a form the user is filling in (a
  // reason, a checkbox) keeps its element and so what was typed.
  // Hand-written rather than a DOM-diffing library (morphdom, idiomorph):
  // the dashboard has no JavaScript build or dependencies, every script is
  // served from this binary under a self-only CSP, and the fragments are
  // our own server-rendered tables, for which this is enough.
  function sameKind(a, b) {
    return a.nodeType === b.nodeType && (a.nodeType !== 1 || (a.tagName === b.tagName && a.id === b.id));
  }
  function morphAttrs(cur, next) {
    var i, a;
    for (i = 0; i < next.attributes.length; i++) {
      a = next.attributes[i];
      if (cur.getAttribute(a.name) !== a.value) { cur.setAttribute(a.name, a.value); }
    }
    for (i = cur.attributes.length - 1; i >= 0; i--) {
      a = cur.attributes[i];
      if (!next.hasAttribute(a.name)) { cur.removeAttribute(a.name); }
    }
  }
  function morph(cur, next) {
    var c = cur.firstChild, n = next.firstChild, nn, cn;
    while (n) {
      nn = n.nextSibling;
      if (!c) {
        cur.appendChild(n);
      } else if (sameKind(c, n)) {
        if (c.nodeType === 1) {
          morphAttrs(c, n);
          morph(c, n);
        } else if (c.nodeValue !== n.nodeValue) {
          c.nodeValue = n.nodeValue;
        }
        c = c.nextSibling;
      } else {
        cn = c.nextSibling;
        cur.replaceChild(n, c);
        c = cn;
      }
      n = nn;
    }
    while (c) {
      cn = c.nextSibling;
      cur.removeChild(c);
      c = cn;
    }
  }

  // swap brings the view up to date with a fragment from the server.
  function swap(html) {
    var t0 = performance.now();
    var tpl = document.createElement('template');
    tpl.innerHTML = html;
    morph(view, tpl.content);
    tick();
    window.rwSwaps++;
    window.rwLastSwapMs = performance.now() - t0;
  }

  function setConn(text, cls) {
    if (!conn) { return; }
    conn.textContent = text;
    conn.className = 'conn ' + (cls || '');
  }

  // patch applies a "patch" event: [[id, outer HTML], ...] for the
  // elements (marked data-patch) that changed since the stream's last
  // event. It reports false when an element is missing, which would mean
  // the page is not what the server thinks it sent.
  function patch(data) {
    var t0 = performance.now();
    var items = JSON.parse(data);
    // One element at a time: a <td> and an <a> parsed together would be
    // rearranged by the HTML parser's table rules.
    var tpl = document.createElement('template');
    for (var i = 0; i < items.length; i++) {
      tpl.innerHTML = items[i][1];
      var next = tpl.content.firstElementChild;
      var cur = document.getElementById(items[i][0]);
      if (!cur || !next || cur.tagName !== next.tagName) { return false; }
      morphAttrs(cur, next);
      morph(cur, next);
    }
    tick();
    window.rwSwaps++;
    window.rwLastSwapMs = performance.now() - t0;
    return true;
  }

  tick();
  setInterval(tick, 1000);

  var src = view && view.dataset.src;
  if (!src || !window.EventSource) { return; }
  var es;
  function connect() {
    es = new EventSource(src);
    es.addEventListener('view', function (e) { swap(e.data); });
    es.addEventListener('patch', function (e) {
      // A new stream starts with the whole view.
      if (!patch(e.data)) {
        window.rwPatchFailures = (window.rwPatchFailures || 0) + 1;
        es.close();
        connect();
      }
    });
    es.addEventListener('status', function (e) {
      setConn(e.data, e.data.indexOf('stale') === 0 ? 'stale' : 'live');
      window.rwStatus = e.data;
    });
    es.addEventListener('auth', function () {
      es.close();
      location.href = document.querySelector('a.brand').getAttribute('href') + 'login?next=' + encodeURIComponent(location.pathname + location.search);
    });
    es.onerror = function () { setConn('reconnecting…', 'stale'); window.rwStatus = 'reconnecting'; };
  }
  connect();
})();
