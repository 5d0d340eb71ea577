package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The hello's commit context ends when the stream's does, or at its
// timeout, keeps the stream's values, and cancelling it leaves the stream
// alone.
func TestCommitContextFollowsTheStream(t *testing.T) {
	type key struct{}
	stream, endStream := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer endStream()

	ctx, cancel := commitContext(stream, time.Hour)
	if ctx.Value(key{}) != "v" {
		t.Error("the commit context lost the stream's values")
	}
	endStream()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the commit context did not end with the stream")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("err %v, want context.Canceled", ctx.Err())
	}
	cancel()

	stream2, endStream2 := context.WithCancel(context.Background())
	defer endStream2()
	ctx, cancel = commitContext(stream2, time.Millisecond)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the commit context did not end at its timeout")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("err %v, want context.DeadlineExceeded", ctx.Err())
	}
	if stream2.Err() != nil {
		t.Error("the commit context's timeout ended the stream")
	}
}
