package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rollwave/rollwave/internal/dashboard"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// perfProbe runs in every page before the page's own scripts (it is
// injected through the DevTools protocol, so the page's CSP does not
// apply). It records:
//   - long tasks (PerformanceObserver 'longtask': main-thread tasks over
//     50 ms, the browser "freezing");
//   - firstFrame: when the first frame after DOMContentLoaded was
//     produced (a requestAnimationFrame callback, then a task after it),
//     i.e. the fleet grid laid out and painted;
//   - per live update (an SSE "view" or "patch" event): the script time of the
//     page's handler, the time until the next frame after it (style,
//     layout, paint included) and the event's size.
const perfProbe = `(function () {
  var p = window.rwProbe = {longTasks: [], firstFrame: 0, updates: []};
  try {
    new PerformanceObserver(function (l) {
      l.getEntries().forEach(function (e) { p.longTasks.push(e.duration); });
    }).observe({type: 'longtask', buffered: true});
  } catch (e) { p.noLongTasks = String(e); }
  document.addEventListener('DOMContentLoaded', function () {
    requestAnimationFrame(function () { setTimeout(function () { p.firstFrame = performance.now(); }, 0); });
  });
  var add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, o) {
    if (type !== 'view' && type !== 'patch') { return add.call(this, type, fn, o); }
    return add.call(this, type, function (e) {
      var t0 = performance.now();
      fn.call(this, e);
      var t1 = performance.now();
      requestAnimationFrame(function () { setTimeout(function () {
        p.updates.push({kind: e.type, script: t1 - t0, frame: performance.now() - t0, bytes: e.data.length});
      }, 0); });
    }, o);
  };
})();`

// pageLoad is one navigation's timings in ms (Navigation Timing and the
// probe).
type pageLoad struct {
	Server     float64 `json:"server"`     // requestStart → responseStart: the dashboard's answer
	Transfer   float64 `json:"transfer"`   // responseStart → responseEnd
	Parse      float64 `json:"parse"`      // responseEnd → DOMContentLoaded end: parse, script
	Assets     float64 `json:"assets"`     // the longest fetch of style.css and app.js (0: from the cache)
	FirstFrame float64 `json:"firstFrame"` // navigation start → first frame after DOMContentLoaded
	Bytes      float64 `json:"bytes"`      // the page's body as sent
	LongMax    float64 `json:"longMax"`    // longest main-thread task
	Long200    int     `json:"long200"`    // tasks over 200 ms
}

type liveUpdate struct {
	Kind   string  `json:"kind"`
	Script float64 `json:"script"`
	Frame  float64 `json:"frame"`
	Bytes  float64 `json:"bytes"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// timing logs "TIMING name: median (min–max) over n" for each figure.
func timing(t *testing.T, name string, figures map[string][]float64, order ...string) {
	t.Helper()
	var b strings.Builder
	for _, k := range order {
		xs := figures[k]
		if len(xs) == 0 {
			continue
		}
		fmt.Fprintf(&b, " %s=%.1f (%.1f–%.1f)", k, median(xs), slices.Min(xs), slices.Max(xs))
	}
	n := 0
	for _, xs := range figures {
		n = max(n, len(xs))
	}
	t.Logf("TIMING %s, median (min–max) of %d:%s", name, n, b.String())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// The fleet view of 1,000 simulated hosts, measured in the browser: the
// page as served (aggregated per cell), every host as a tile
// (?tiles=all), and live updates that move 300 hosts between versions.
// The figures are logged as TIMING lines (medians of several loads and
// updates) with the machine's load, not asserted: the machine is shared.
// What is asserted is that the pages show the right things, that
// updates happen in place, and that no main-thread task took over 1 s
// (a frozen page).
func TestBrowserThousandHosts(t *testing.T) {
	const loads, updates = 5, 6
	ctx := newBrowser(t)
	sctx, cancel := context.WithTimeout(ctx, browserStep)
	_, err := chromedp.Call(sctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: perfProbe})
	cancel()
	if err != nil {
		t.Fatalf("install the performance probe: %v", err)
	}
	api := simulatedFleet(1000)
	srv, _ := serve(t, api, func(c *dashboard.Config) { c.PollInterval = 200 * time.Millisecond })
	t.Logf("machine load (1, 5, 15 min) at start: %s", loadAvg())

	// load navigates to path, waits for the view (sel) and the first live
	// update, and reads the timings.
	load := func(path, sel string) pageLoad {
		do(t, ctx, chromedp.Navigate(srv.URL+path))
		waitJS(t, ctx, browserStep, `document.querySelectorAll('`+sel+`').length > 0 && window.rwSwaps > 0 && window.rwProbe.firstFrame > 0`,
			`document.title + ' swaps=' + window.rwSwaps`)
		if msg := eval[string](t, ctx, `window.rwProbe.noLongTasks || ''`); msg != "" {
			t.Fatalf("this browser has no long-task observer: %s", msg)
		}
		return eval[pageLoad](t, ctx, `(n => ({server: n.responseStart - n.requestStart, transfer: n.responseEnd - n.responseStart,
			parse: n.domContentLoadedEventEnd - n.responseEnd,
			assets: Math.max(0, ...performance.getEntriesByType('resource').filter(r => r.name.indexOf('/static/') > 0).map(r => r.responseEnd - r.startTime)),
			firstFrame: window.rwProbe.firstFrame, bytes: n.encodedBodySize,
			longMax: Math.max(0, ...window.rwProbe.longTasks), long200: window.rwProbe.longTasks.filter(d => d > 200).length}))(performance.getEntriesByType('navigation')[0])`)
	}
	measure := func(name, path, sel string) {
		figs := map[string][]float64{}
		for i := 0; i < loads; i++ {
			l := load(path, sel)
			for k, v := range map[string]float64{"server_ms": l.Server, "transfer_ms": l.Transfer, "parse_ms": l.Parse, "assets_ms": l.Assets,
				"first_frame_ms": l.FirstFrame, "kib": l.Bytes / 1024, "longest_task_ms": l.LongMax, "tasks_over_200ms": float64(l.Long200)} {
				figs[k] = append(figs[k], v)
			}
			if l.LongMax > 1000 {
				t.Errorf("%s: a main-thread task took %.0f ms (the page froze)", name, l.LongMax)
			}
		}
		timing(t, name, figs, "first_frame_ms", "server_ms", "transfer_ms", "parse_ms", "assets_ms", "kib", "longest_task_ms", "tasks_over_200ms")
	}

	measure("fleet 1,000 hosts aggregated (/ui/)", "/ui/", "#fleet .count")
	if agg := eval[string](t, ctx, `document.getElementById('fleet').dataset.aggregated`); agg != "true" {
		t.Fatalf("1,000 hosts are not aggregated per cell (data-aggregated=%s)", agg)
	}
	cells := eval[int](t, ctx, `document.querySelectorAll('#fleet tr.cell').length`)
	first := eval[string](t, ctx, `document.querySelector('#fleet tr.cell').dataset.cell`)
	if cells != 10 || first != "cell-09" {
		t.Fatalf("cells: %d rows, first %s; want 10 rows, least risky (cell-09, risk 1) first", cells, first)
	}
	if n := eval[int](t, ctx, `Number(document.querySelector('#fleet tr.cell[data-cell="cell-00"] .count[data-version="2.0.0"] b').textContent)`); n != 100 {
		t.Fatalf("cell-00 counts %d hosts on 2.0.0, want 100", n)
	}
	screenshot(t, ctx, "fleet-1000")

	// The probe sees a frozen page: a 300 ms busy loop is a long task.
	eval[bool](t, ctx, `setTimeout(() => { const t = performance.now(); while (performance.now() - t < 300) {} }, 0) > 0`)
	waitJS(t, ctx, 20*time.Second, `window.rwProbe.longTasks.some(d => d >= 250)`, `JSON.stringify(window.rwProbe.longTasks)`)

	measure("fleet 1,000 hosts as tiles (/ui/?tiles=all)", "/ui/?tiles=all", "#fleet .tile")
	if tiles := eval[int](t, ctx, `document.querySelectorAll('#fleet .tile').length`); tiles != 1000 {
		t.Fatalf("%d tiles, want 1000", tiles)
	}

	// Live updates: 300 hosts move to 2.0.0 and back, in turn. Each must
	// show in place (no reload); the probe times each.
	eval[bool](t, ctx, `window.rwMarker = true`)
	before := eval[int](t, ctx, `window.rwProbe.updates.length`)
	for i := 0; i < updates; i++ {
		v, st, want := "2.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, 633
		if i%2 == 1 {
			v, st, want = "1.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, 333
		}
		api.mu.Lock()
		for _, h := range api.hosts[333:633] {
			h.Host.Apps[0].BlueVersion = v
			h.Assignments[0].State = st
		}
		api.mu.Unlock()
		waitJS(t, ctx, browserStep, `document.querySelectorAll('#fleet .tile[data-version="2.0.0"]').length === `+itoa(want)+
			` && window.rwProbe.updates.length > `+itoa(before+i),
			`'2.0.0 tiles: ' + document.querySelectorAll('#fleet .tile[data-version="2.0.0"]').length + ', updates ' + window.rwProbe.updates.length`)
		if got := eval[int](t, ctx, `document.querySelectorAll('#fleet .tile.s-baking').length`); got != want {
			t.Fatalf("update %d: %d tiles baking, want %d", i, got, want)
		}
	}
	if !eval[bool](t, ctx, `window.rwMarker === true`) {
		t.Fatal("the page reloaded instead of updating in place")
	}
	ups := eval[[]liveUpdate](t, ctx, `window.rwProbe.updates.slice(`+itoa(before)+`)`)
	figs := map[string][]float64{}
	patches := 0
	for _, u := range ups {
		if u.Kind == "patch" {
			patches++
		}
		figs["frame_ms"] = append(figs["frame_ms"], u.Frame)
		figs["script_ms"] = append(figs["script_ms"], u.Script)
		figs["kib"] = append(figs["kib"], u.Bytes/1024)
	}
	if n := eval[int](t, ctx, `window.rwPatchFailures || 0`); n != 0 {
		t.Errorf("%d patches did not apply (the page fell back to a new stream)", n)
	}
	if patches < updates {
		t.Errorf("%d of %d live updates were patches of the changed tiles; want every tile update sent as a patch", patches, len(ups))
	}
	long := eval[[]float64](t, ctx, `window.rwProbe.longTasks`)
	figs["longest_task_ms"] = []float64{slices.Max(append(long, 0))}
	timing(t, "fleet 1,000 tiles, live update of 300 hosts (SSE event → next frame)", figs, "frame_ms", "script_ms", "kib", "longest_task_ms")
	if m := slices.Max(append(long, 0)); m > 1000 {
		t.Errorf("a main-thread task took %.0f ms during live updates (the page froze)", m)
	}
	t.Logf("machine load (1, 5, 15 min) at end: %s", loadAvg())
	do(t, ctx, chromedp.Navigate("about:blank"))
}

func itoa(n int) string { return strconv.Itoa(n) }
