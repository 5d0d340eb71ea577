// Package monitoring holds no code: it ships a Grafana dashboard
// (grafana-dashboard.json) and Prometheus alerting rules (alerts.yml) for
// rollwave's /metrics, and the test that checks them with promtool.
package monitoring
