// Package realhost holds the benchmarks that need real systemd hosts
// (test/integration/fleet: nspawn containers, root): the side-by-side
// rollout against Ansible `serial` and the isolation revert. The
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
	// Isolation is the cut → old slot serving bench.
	Isolation *Isolation `json:"isolation,omitempty"`
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
