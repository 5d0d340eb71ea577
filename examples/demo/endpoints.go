package main

import (
	"context"
	"fmt"
)

// dashboardNote says where the dashboard is and how to log in.
func (d *demo) dashboardNote() {
	d.say.note("Dashboard: %s (every coordinator serves one; the certificate is the demo CA's", d.dashboardURL())
	d.say.note("  %s, so the browser asks you to accept it)", d.sec.ca)
	if d.sec.token != "" {
		d.say.note("Log in there with the demo-operator token: %s", d.sec.token)
	}
}

func (d *demo) dashboardURL() string {
	return fmt.Sprintf("https://%s/ui/", local(d.servers[0].http))
}

// endpointsNote ends the session: where the dashboard is, where each
// process serves its Prometheus metrics and how to read them (HTTPS with a
// client certificate: the demo runs with TLS). examples/monitoring has a
// Grafana dashboard and alerting rules for them.
func (d *demo) endpointsNote() {
	d.say.section("Where to look: until the demo stops, every process serves /metrics, /v1/health and /v1/ready")
	d.dashboardNote()
	d.say.note("Prometheus metrics:")
	for _, s := range d.servers {
		d.say.note("  coordinator %s: https://%s/metrics", s.name, local(s.http))
	}
	for i, a := range d.agentHTTP {
		d.say.note("  agent %s: https://%s/metrics", d.hosts[i].name, a)
	}
	if d.sec.ca != "" {
		d.say.note("With TLS on, /metrics needs a client certificate of the cluster, e.g. the CLI's:")
		for _, addr := range []string{local(d.servers[0].http), d.agentHTTP[0]} {
			d.say.note("  curl --cacert %s --cert %s --key %s https://%s/metrics", d.sec.ca, d.sec.cliCert, d.sec.cliKey, addr)
		}
	}
	d.say.note("(examples/monitoring has a Grafana dashboard and Prometheus alerting rules for them.)")
	if !d.o.keep {
		d.say.note("To keep the cluster up after the narration: bin/rollwave-demo -keep (or DEMO_KEEP=1 make demo).")
	}
}

// keepUp holds the cluster up until ctx ends (Ctrl-C), with the paths
// spelled out so the commands above can be pasted into a shell.
func (d *demo) keepUp(ctx context.Context) error {
	d.say.section("-keep: the cluster stays up until Ctrl-C")
	d.say.note("In another shell, to use the CLI and paste the commands above:")
	// raw: the narrator would shorten the paths back to $DEMO.
	d.say.raw(fmt.Sprintf("\n$ export DEMO=%s\n", d.tmp))
	d.say.raw(fmt.Sprintf("$ export ROLLWAVE_ADDR=%s ROLLWAVE_CACERT=%s ROLLWAVE_CLIENT_CERT=%s ROLLWAVE_CLIENT_KEY=%s ROLLWAVE_TOKEN=%s\n\n",
		d.addr, d.sec.ca, d.sec.cliCert, d.sec.cliKey, d.sec.token))
	d.dashboardNote()
	d.say.note("Coordinator c1's metrics: https://%s/metrics, agent h1's: https://%s/metrics", local(d.servers[0].http), d.agentHTTP[0])
	if len(d.hosts) > 0 && d.traffic != nil {
		d.say.note("The traffic generator has stopped; the app still answers, e.g. curl http://%s/", d.hosts[0].traffic)
	}
	d.say.note("Press Ctrl-C to stop every process and remove $DEMO.")
	d.keeping = true
	d.stage("keep")
	<-ctx.Done()
	return nil
}
