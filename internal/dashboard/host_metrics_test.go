package dashboard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rollwave/rollwave/internal/dashboard"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// withSample gives host h0001 of a simulated fleet a heartbeat sample.
func withSample(f *fakeAPI) {
	f.hosts[1].Metrics = &rollwavev1.HostSample{ReceivedUnixNano: time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC).UnixNano(),
		Host: &rollwavev1.HostMetrics{CpuPercent: 37.3, MemPercent: 61, Load1: 0.42, DiskPercent: 12},
		Slots: []*rollwavev1.SlotMetrics{{App: "api", Slot: rollwavev1.Slot_SLOT_BLUE, Version: "2.0.0", Healthy: true,
			HealthyForMs: 90_000, CpuPercent: 12.5, RssBytes: 96 << 20, Restarts: 2}},
		Requests: []*rollwavev1.SlotRequests{{App: "api", Slot: rollwavev1.Slot_SLOT_BLUE, Version: "2.0.0", Protocol: "http",
			Requests: 480, Errors: 7, UpstreamErrors: 1, P99Ms: 23.5}},
	}
}

// The host page shows the host's latest heartbeat: host CPU and memory,
// each slot's CPU, RSS and restarts, and the proxy's requests, 5xx and
// p99 per slot; a new heartbeat updates them in place.
func TestHostPageShowsMetrics(t *testing.T) {
	api := simulatedFleet(3)
	withSample(api)
	srv, _ := serve(t, api, nil)
	_, body := get(t, browser(t), srv.URL+"/ui/hosts/h0001")
	for _, want := range []string{`id="host-metrics"`, "37.3%", "61.0%", "0.42", "2026-12-06 07:00:00Z",
		`<td class="m-cpu">12.5%</td>`, `<td class="m-rss">96.0 MiB</td>`, "yes, for 1m30s",
		`<td class="m-requests">480</td>`, `<td class="m-errors">7</td>`, `<td class="m-p99">23.5 ms</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("host page lacks %q", want)
		}
	}
	// A host the leader has no heartbeat from says so.
	_, body = get(t, browser(t), srv.URL+"/ui/hosts/h0002")
	if !strings.Contains(body, "No heartbeat from this host on the leader") || strings.Contains(body, `id="host-metrics"`) {
		t.Errorf("host without a sample: %s", body)
	}
}

func TestBrowserHostMetrics(t *testing.T) {
	ctx := newBrowser(t)
	api := simulatedFleet(3)
	withSample(api)
	srv, _ := serve(t, api, func(c *dashboard.Config) { c.PollInterval = 200 * time.Millisecond })
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/hosts/h0001"))
	text := func(sel string) string {
		return `(document.querySelector('` + sel + `') || {textContent: ''}).textContent`
	}
	waitJS(t, ctx, browserStep, text("#host-metrics .m-cpu")+` === '37.3%' && `+text("#slot-requests .m-p99")+` === '23.5 ms'`,
		`document.getElementById('view').innerText.slice(0, 400)`)
	for sel, want := range map[string]string{"#host-metrics .m-mem": "61.0%", "#slot-metrics .m-rss": "96.0 MiB",
		"#slot-metrics .m-cpu": "12.5%", "#slot-requests .m-requests": "480", "#slot-requests .m-errors": "7"} {
		if got := eval[string](t, ctx, text(sel)); got != want {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	// The next heartbeat: the figures change without a reload.
	eval[bool](t, ctx, `window.rwMarker = true`)
	api.mu.Lock()
	api.hosts[1].Metrics.Host.CpuPercent = 88
	api.hosts[1].Metrics.Requests[0].Errors = 31
	api.mu.Unlock()
	waitJS(t, ctx, browserStep, text("#host-metrics .m-cpu")+` === '88.0%' && `+text("#slot-requests .m-errors")+` === '31'`,
		`document.getElementById('view').innerText.slice(0, 400)`)
	if !eval[bool](t, ctx, `window.rwMarker === true`) {
		t.Fatal("the host page reloaded instead of updating in place")
	}
	do(t, ctx, chromedp.Navigate("about:blank"))
}
