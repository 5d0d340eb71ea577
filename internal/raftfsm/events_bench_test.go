package raftfsm_test

import (
	"fmt"
	"testing"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// BenchmarkAppendEventsManyReleases: the audit events of agent progress
// while 20 releases run at once (each entry of the host writer carries a
// few host.switched events of every release), over a log that already
// holds 20,000 events. ns/op and B/op are per entry of 20 events.
func BenchmarkAppendEventsManyReleases(b *testing.B) {
	const releases, perEntry = 20, 20
	f := raftfsm.New(nil)
	var index uint64
	do := func(data []byte) {
		index++
		if _, err := f.ApplyEntry(index, data); err != nil {
			b.Fatal(err)
		}
	}
	for r := range releases {
		id := fmt.Sprintf("app-%02d-1", r)
		data, err := raftfsm.Encode(raftfsm.SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: 1, Actor: "bench", Release: &v1.Release{
			Id: id, Spec: &v1.ReleaseSpec{Name: id, App: fmt.Sprintf("app-%02d", r), Version: "2"}}})
		if err != nil {
			b.Fatal(err)
		}
		do(data)
	}
	entry := func(seq int) []byte {
		c := &v1.AppendEventsCommand{TimeUnixNano: int64(seq)}
		for r := range releases {
			for i := range perEntry / releases {
				c.Events = append(c.Events, &v1.Event{Kind: "host.switched", ReleaseId: fmt.Sprintf("app-%02d-1", r), Actor: "agent",
					Host: fmt.Sprintf("host-%04d", (seq*perEntry+i)%1000), Message: "switched traffic to green",
					Evidence: map[string]string{"from_slot": "blue", "to_slot": "green", "from_version": "1", "to_version": "2"}})
			}
		}
		data, err := raftfsm.Encode(raftfsm.AppendEvents, c)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	e := entry(0)
	for range 20000 / perEntry {
		do(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		do(e)
	}
}
