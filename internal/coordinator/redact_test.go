package coordinator_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/spec/specpb"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSecuritySecretRedactionOperatorAPI (issue 11 item 11a): credentials
// in an artifact URL showed in `release get -json`, listings, watches and
// events. A spec with them is refused now; one already in the raft log (from
// before) is still shown only redacted, on every read path, while the
// replicated state keeps the URL the agents fetch.
func TestSecuritySecretRedactionOperatorAPI(t *testing.T) {
	const secretURL = "https://deploy:hunter2@artifacts.internal/api/1.0.0/api.tar.gz"
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	cl := c.Client(leader)
	src := strings.Replace(string(specSource("api-1.0.0", "api")), "file:///srv/artifacts/api.tar.gz", secretURL, 1)
	if !strings.Contains(src, secretURL) {
		t.Fatal("fixture changed: artifact URL not replaced")
	}

	// New submissions are refused, naming the field, without echoing the secret.
	_, err := cl.SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "api.hcl", Source: []byte(src)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "release.artifact.url") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("submit with credentials: want InvalidArgument naming release.artifact.url without the password, got %v", err)
	}

	// An entry written before the check: the spec as the old server stored it.
	r, err := spec.ParseRelease("api.hcl", []byte(strings.Replace(src, secretURL, "https://artifacts.internal/api/1.0.0/api.tar.gz", 1)))
	if err != nil {
		t.Fatal(err)
	}
	sp := specpb.ToProto(r)
	sp.Artifact.Url = secretURL
	now := time.Now().UnixNano()
	rel := &rollwavev1.Release{Id: "api-1.0.0", Spec: sp, State: rollwavev1.ReleaseState_RELEASE_STATE_PENDING,
		CreatedUnixNano: now, UpdatedUnixNano: now, CreatedBy: "old", SourceName: "api.hcl", Source: []byte(src),
		Reason: "fetch " + secretURL + ": 404"}
	if _, err := leader.Apply(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now, Release: rel, Actor: "old"}); err != nil {
		t.Fatalf("apply old release: %v", err)
	}
	if _, err := leader.Apply(raftfsm.AppendEvents, &rollwavev1.AppendEventsCommand{TimeUnixNano: now, Events: []*rollwavev1.Event{{
		TimeUnixNano: now, ReleaseId: "api-1.0.0", Kind: "host.failed", Host: "h1",
		Message: `staging: fetch "` + secretURL + `": http status 404`, Evidence: map[string]string{"url": secretURL},
	}}}); err != nil {
		t.Fatalf("apply old event: %v", err)
	}

	shown := map[string]proto.Message{}
	get, err := cl.GetRelease(ctx(t), &rollwavev1.GetReleaseRequest{Id: "api-1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	shown["GetRelease"] = get
	if got, want := get.GetRelease().GetSpec().GetArtifact().GetUrl(), "https://deploy:xxxxx@artifacts.internal/api/1.0.0/api.tar.gz"; got != want {
		t.Errorf("GetRelease artifact url = %q, want %q", got, want)
	}
	list, err := cl.ListReleases(ctx(t), &rollwavev1.ListReleasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	shown["ListReleases"] = list
	ev, err := cl.ListEvents(ctx(t), &rollwavev1.ListEventsRequest{ReleaseId: "api-1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	shown["ListEvents"] = ev
	if len(ev.GetEvents()) == 0 {
		t.Fatal("no events listed")
	}
	// An abort ends the watch after its first message.
	if _, err := cl.AbortRelease(ctx(t), &rollwavev1.ReleaseActionRequest{Id: "api-1.0.0", Reason: "test"}); err != nil {
		t.Fatalf("abort: %v", err)
	}
	w, err := cl.WatchRelease(ctx(t), &rollwavev1.WatchReleaseRequest{Id: "api-1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		m, err := w.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		shown["WatchRelease"+string(rune('0'+i))] = m
	}
	for name, m := range shown {
		if b, _ := protojson.Marshal(m); strings.Contains(string(b), "hunter2") {
			t.Errorf("%s shows the password: %s", name, b)
		}
	}
	// The replicated state is untouched: agents still get the URL as written.
	if got := leader.FSM().State().Release("api-1.0.0").GetSpec().GetArtifact().GetUrl(); got != secretURL {
		t.Errorf("stored artifact url = %q, want it unchanged", got)
	}
}
