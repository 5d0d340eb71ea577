// Package health decides whether a service is healthy and whether a new
// version behaves as well as the old one.
//
// It holds four layers, each usable on its own:
//
//   - Checks (HTTP, TCP, exec, func) and FromSpec, which builds one from a
//     release spec's health check.
//   - Tracker, which runs checks on their intervals and reports "healthy"
//     only after every check has passed continuously for MinHealthyTime
//     (Nomad's allochealth semantics: one failure restarts the clock).
//   - Sampler and Window: host and process-tree metrics from gopsutil, kept
//     in bounded windows of timestamped samples, with the summaries (mean,
//     p50, p95, max) and proto conversions the agent heartbeat carries.
//   - Gates: pure helpers the rollout engine uses to judge a phase —
//     thresholds, failure budgets and a one-sided Mann-Whitney U comparison
//     of canary against baseline samples.
//
// The package imports only the standard library, gopsutil and the generated
// protocol package; it knows nothing of raft, gRPC servers or systemd. Time
// comes from a Clock so tests drive it with FakeClock.
package health
