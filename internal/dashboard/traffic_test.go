package dashboard_test

import (
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The release page shows the new version's share of traffic per phase
// and per host, as the agents report it (dark, shadow, a weighted step);
// the host page shows its active slot's share.
func TestPagesShowTrafficWeight(t *testing.T) {
	api := simulatedFleet(3)
	api.hosts[0].Host.Apps[0].Dark, api.hosts[0].Host.Apps[0].Shadow = true, true
	api.hosts[1].Host.Apps[0].TrafficWeight = 10
	api.assignments = []*rollwavev1.Assignment{
		{Host: "h0000", Phase: 1, Version: "2.0.0", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED},
		{Host: "h0001", Phase: 1, Version: "2.0.0", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED},
		{Host: "h0002", Phase: 0, Version: "2.0.0", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY},
	}
	api.traffic = []*rollwavev1.HostTraffic{
		{Host: "h0000", Phase: 1, NewWeight: 0, Dark: true, Shadow: true},
		{Host: "h0001", Phase: 1, NewWeight: 10},
		{Host: "h0002", Phase: 0, NewWeight: 100},
	}
	srv, _ := serve(t, api, nil)
	c := browser(t)
	_, body := get(t, c, srv.URL+"/ui/releases/api-2.0.0")
	for _, want := range []string{
		`new version gets <span class="traffic">1×100%</span>`,
		`new version gets <span class="traffic">1×0% (dark, shadow) 1×10%</span>`,
		`<th>Traffic to it</th>`,
		`<tr data-host="h0000">`, `<td class="traffic">0% (dark, shadow)</td>`,
		`<td class="traffic">10%</td>`, `<td class="traffic">100%</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("release page lacks %q", want)
		}
	}
	for host, want := range map[string]string{"h0000": "0% (dark, shadow)", "h0001": "10% (old slot 90%)", "h0002": "100%"} {
		_, body = get(t, c, srv.URL+"/ui/hosts/"+host)
		if !strings.Contains(body, `<td class="traffic">`+want+`</td>`) {
			t.Errorf("host page of %s lacks its traffic %q", host, want)
		}
	}
}
