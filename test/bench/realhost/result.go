// Package realhost holds the benchmarks that need real systemd hosts
// (test/integration/fleet: nspawn containers, root): the side-by-side
// rollout against Ansible `serial` (linear and free), a rollback of every
// host, a rollout with one bad host, the blast radius of a bad release
// under steady load, and the isolation revert. The
// benchmark itself is TestRealHostBench (build tag e2e); it writes a
// Result as JSON to $BENCH_REALHOST_OUT, which `make bench` reads.
package realhost

// Result is what one TestRealHostBench run measured.
type Result struct {
	// Hosts and Cells describe the fleet: real systemd hosts, the agent
	// installed from the .deb, 3 coordinator processes on the machine.
	Hosts int `json:"hosts"`
	Cells int `json:"cells"`
	// Phases are the phase sizes of rollwave's plan; Ansible's serial gets
	// the same list, its inventory the same host order.
	Phases []int `json:"phases"`
	// AnsibleVersion is `ansible-playbook --version`'s first line.
	AnsibleVersion string `json:"ansible_version"`
	// Rounds are the timed rollouts, one new version each, rollwave first
	// then Ansible.
	Rounds []Round `json:"rounds"`
	// RollwaveMedian and AnsibleMedian are the medians of the rounds' wall
	// times in seconds; Ratio is AnsibleMedian / RollwaveMedian.
	RollwaveMedian float64 `json:"rollwave_median_s"`
	AnsibleMedian  float64 `json:"ansible_median_s"`
	Ratio          float64 `json:"ratio"`
	// AnsibleFreeMedian is the median of the rounds' Ansible runs with
	// `strategy: free` (same serial batches); FreeRatio is it over
	// RollwaveMedian.
	AnsibleFreeMedian float64 `json:"ansible_free_median_s,omitempty"`
	FreeRatio         float64 `json:"free_ratio,omitempty"`
	// Rollback, BadHost and Blast are the rollback of every host, the
	// rollout with one bad host and the blast radius of a bad release.
	Rollback *Rollback `json:"rollback,omitempty"`
	BadHost  *BadHost  `json:"bad_host,omitempty"`
	Blast    *Blast    `json:"blast_radius,omitempty"`
	// Isolation is the cut → old slot serving bench.
	Isolation *Isolation `json:"isolation,omitempty"`
}

// Rollback is every host taken back to the version it ran before.
type Rollback struct {
	Hosts int `json:"hosts"`
	// RollwaveSeconds: `rollwave release rollback ID` invoked (the release
	// watching after its rollout, post_rollout.watch, old slots hot) →
	// the last answer by the new version on any host's traffic port (each
	// polled from the machine 10 times a second), wall clock.
	RollwaveSeconds float64 `json:"rollwave_s"`
	// RollwaveRecordedSeconds: release.rolling_back → release.rolled_back
	// as recorded in raft (every host reported back on the old slot).
	RollwaveRecordedSeconds float64 `json:"rollwave_recorded_s"`
	// AnsibleSeconds: the rollout playbook with the old version, every
	// host in one batch (serial = all, forks 50), started → exited 0.
	AnsibleSeconds float64 `json:"ansible_s"`
	Ratio          float64 `json:"ratio"`
}

// BadHost is a rollout in which the new version fails its health check on
// exactly one host (a marker file there; the same artifact everywhere).
type BadHost struct {
	Hosts  int    `json:"hosts"`
	Host   string `json:"host"`
	Phases []int  `json:"phases"`
	// Phase is the bad host's phase in rollwave's plan (0 = canary);
	// Ansible's inventory is in the plan's order with the same batches.
	Phase int `json:"phase"`
	// HealthDeadlineSeconds: rollwave's healthy_deadline and Ansible's
	// health wait (retries × 1 s).
	HealthDeadlineSeconds float64 `json:"health_deadline_s"`
	// Rollwave: release start → the host.failed event (detection) and →
	// the last answer by the new version on any host (every host on the
	// old version again: the gate failed the phase, on_failure = all).
	RollwaveDetectSeconds float64 `json:"rollwave_detect_s"`
	RollwaveOldSeconds    float64 `json:"rollwave_old_s"`
	RollwaveHostsReached  int     `json:"rollwave_hosts_reached"`
	// Ansible (max_fail_percentage 0): start → the playbook exits failed
	// (detection; the play stops after the failing batch), and → the
	// rollback run (old version, one batch) exits 0.
	AnsibleDetectSeconds float64 `json:"ansible_detect_s"`
	AnsibleOldSeconds    float64 `json:"ansible_old_s"`
	AnsibleHostsReached  int     `json:"ansible_hosts_reached"`
}

// Blast is the blast radius of a release that answers 500 to 10 % of
// requests while its health check passes, under steady load on every
// target host.
type Blast struct {
	Hosts     int        `json:"hosts"`
	Cell      string     `json:"cell"`
	RateHost  float64    `json:"rps_per_host"`
	ErrorRate float64    `json:"error_rate"`
	Runs      []BlastRun `json:"runs"`
}

// BlastRun is one tool's rollout of the bad version and the way back.
type BlastRun struct {
	Name string `json:"name"`
	// Window: release start → the last answer by the bad version on any
	// host (every host serves the old version again from then on).
	WindowSeconds float64 `json:"window_s"`
	// Requests sent in the window; Failed = 500s + no answer (connect
	// errors, resets, 2 s timeouts); FailedPct = Failed / Requests.
	Requests       int     `json:"requests"`
	Failed5xx      int     `json:"failed_5xx"`
	FailedNoAnswer int     `json:"failed_no_answer"`
	FailedPct      float64 `json:"failed_pct"`
	// OnBad: requests answered by the bad version; HostsReached: hosts
	// that ever answered with it.
	OnBad        int `json:"on_bad"`
	HostsReached int `json:"hosts_reached"`
	// DetectSeconds: release start → the first failure recorded (a
	// reverted or failed host, a failed gate); -1: never detected.
	DetectSeconds float64 `json:"detect_s"`
	Detection     string  `json:"detection"`
	// RateHost is the load actually sent, per host per second.
	RateHost float64 `json:"rps_per_host_sent"`
}

// Round is one version rolled out by both tools over the same hosts.
type Round struct {
	Version string `json:"version"`
	// RollwaveSeconds: `rollwave release start` invoked → the release
	// seen succeeded (polled every 100 ms), wall clock.
	RollwaveSeconds float64 `json:"rollwave_s"`
	// RollwaveRecordedSeconds: the release's created → succeeded times as
	// recorded in raft.
	RollwaveRecordedSeconds float64 `json:"rollwave_recorded_s"`
	// AnsibleSeconds: ansible-playbook started → exited 0, wall clock.
	AnsibleSeconds float64 `json:"ansible_s"`
	Ratio          float64 `json:"ratio"`
	// AnsibleFreeSeconds: the same with `strategy: free` (a version of its
	// own, so it replaces a running one too).
	AnsibleFreeSeconds float64 `json:"ansible_free_s,omitempty"`
}

// Isolation is cut → old version answering on each cut host's traffic
// port (queried inside the host), for hosts cut in the middle of a bake.
type Isolation struct {
	TimeoutSeconds float64   `json:"isolation_timeout_s"`
	Rounds         int       `json:"rounds"`
	Seconds        []float64 `json:"seconds"`
	P50            float64   `json:"p50_s"`
	Max            float64   `json:"max_s"`
	// Missed counts cut hosts that did not answer with the old version
	// within isolation_timeout + 10 s.
	Missed int `json:"missed"`
}
