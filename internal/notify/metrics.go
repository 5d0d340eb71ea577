package notify

import "github.com/prometheus/client_golang/prometheus"

var (
	descDelivered = prometheus.NewDesc("rollwave_notify_delivered_total",
		"Events this server delivered to the notification target (2xx answers).", []string{"target"}, nil)
	descFailures = prometheus.NewDesc("rollwave_notify_failures_total",
		"Failed delivery attempts to the notification target (each is retried).", []string{"target"}, nil)
	descLag = prometheus.NewDesc("rollwave_notify_lag_events",
		"Audit events after the target's delivery cursor (subscribed or not); 0 when caught up.", []string{"target"}, nil)
	descLost = prometheus.NewDesc("rollwave_notify_lost_events",
		"Events retention pruned before they were delivered to the target, in all (raft's count).", []string{"target"}, nil)
)

// Describe implements prometheus.Collector.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descFailures, descLag, descLost} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the figures Status reports,
// read at scrape time.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for _, st := range n.Status() {
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(st.GetDelivered()), st.GetName())
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.GetFailures()), st.GetName())
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(st.GetLagEvents()), st.GetName())
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.GaugeValue, float64(st.GetLostEvents()), st.GetName())
	}
}
