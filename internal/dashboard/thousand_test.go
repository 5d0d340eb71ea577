package dashboard_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rollwave/rollwave/internal/dashboard"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The fleet view of 1,000 simulated hosts, measured in the browser with
// performance timings: the page as served (aggregated per cell), every
// host as a tile (?tiles=all), and a live update that moves 300 hosts
// to the new version. The figures are logged, not asserted (timings
// depend on the machine; the target is ≤ 1 s).
func TestBrowserThousandHosts(t *testing.T) {
	ctx := newBrowser(t)
	api := simulatedFleet(1000)
	srv, _ := serve(t, api, func(c *dashboard.Config) { c.PollInterval = 200 * time.Millisecond })

	// domReady is the browser's own work: from the last byte of the page
	// to DOMContentLoaded (parse, style, layout of every tile).
	measure := func(path, sel string) (domReady, swap float64) {
		do(t, ctx, chromedp.Navigate(srv.URL+path))
		waitJS(t, ctx, browserStep, `document.querySelectorAll('`+sel+`').length > 0 && window.rwSwaps > 0`,
			`document.title + ' swaps=' + window.rwSwaps`)
		domReady = eval[float64](t, ctx, `(n => n.domContentLoadedEventEnd - n.responseEnd)(performance.getEntriesByType('navigation')[0])`)
		t.Logf("%s: server answered in %.0f ms", path, eval[float64](t, ctx, `(n => n.responseEnd - n.requestStart)(performance.getEntriesByType('navigation')[0])`))
		swap = eval[float64](t, ctx, `window.rwLastSwapMs`)
		return domReady, swap
	}

	dom, swap := measure("/ui/", "#fleet .count")
	if agg := eval[string](t, ctx, `document.getElementById('fleet').dataset.aggregated`); agg != "true" {
		t.Fatalf("1,000 hosts are not aggregated per cell (data-aggregated=%s)", agg)
	}
	cells := eval[int](t, ctx, `document.querySelectorAll('#fleet tr.cell').length`)
	first := eval[string](t, ctx, `document.querySelector('#fleet tr.cell').dataset.cell`)
	t.Logf("fleet, 1,000 hosts aggregated in %d cells: rendered in %.0f ms (response end to DOMContentLoaded), live swap %.1f ms", cells, dom, swap)
	if cells != 10 || first != "cell-09" {
		t.Fatalf("cells: %d rows, first %s; want 10 rows, least risky (cell-09, risk 1) first", cells, first)
	}
	screenshot(t, ctx, "fleet-1000")

	dom, swap = measure("/ui/?tiles=all", "#fleet .tile")
	tiles := eval[int](t, ctx, `document.querySelectorAll('#fleet .tile').length`)
	t.Logf("fleet, 1,000 hosts as tiles: rendered in %.0f ms (response end to DOMContentLoaded), live swap %.1f ms", dom, swap)
	if tiles != 1000 {
		t.Fatalf("%d tiles, want 1000", tiles)
	}

	// 300 more hosts move to 2.0.0: the page updates in place.
	before := eval[int](t, ctx, `window.rwSwaps`)
	eval[bool](t, ctx, `window.rwMarker = true`)
	api.mu.Lock()
	for _, h := range api.hosts[333:633] {
		h.Host.Apps[0].BlueVersion = "2.0.0"
		h.Assignments[0].State = rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING
	}
	api.mu.Unlock()
	waitJS(t, ctx, browserStep, `document.querySelectorAll('#fleet .tile[data-version="2.0.0"]').length === 633`,
		`'2.0.0 tiles: ' + document.querySelectorAll('#fleet .tile[data-version="2.0.0"]').length`)
	if !eval[bool](t, ctx, `window.rwMarker === true && window.rwSwaps > `+itoa(before)) {
		t.Fatal("the page reloaded instead of updating in place")
	}
	t.Logf("fleet, 1,000 tiles, update of 300 hosts: live swap %.1f ms", eval[float64](t, ctx, `window.rwLastSwapMs`))
	do(t, ctx, chromedp.Navigate("about:blank"))
}

func itoa(n int) string { return strconv.Itoa(n) }
