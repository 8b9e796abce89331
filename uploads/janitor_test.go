package uploads

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/formq/formq/submission"
	"github.com/oklog/ulid/v2"
)

func TestJanitorRemovesOnlyOrphans(t *testing.T) {
	st := newTestStore(t, testPart, 2*testPart)
	ctx := t.Context()
	put := func(key string) {
		t.Helper()
		if _, err := st.Put(ctx, key, bytes.NewReader([]byte("data of "+key)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{
		"uploads/act/recorded/f/0", // its record exists
		"uploads/act/queued/f/0",   // its task is still queued
		"uploads/act/orphan/f/0",   // neither: a crash between store and enqueue
		"uploads/act/orphan/f/1",   //
		"uploads/act/unknown/f/0",  // Keep fails: kept this time
		"uploads/_staged/old",      // staged, past StagedAge
		"uploads/other/layout",     // not an upload key of formq: left alone
		"unrelated/act/orphan",     // not under uploads/
	} {
		put(k)
	}
	if err := st.PutJSON(ctx, "submissions/act/recorded.json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &st.bucket, Key: aws.String("uploads/act/crashed/f/0")}); err != nil {
		t.Fatal(err)
	}
	keep := func(ctx context.Context, action, sub string) (bool, error) {
		switch sub {
		case "queued":
			return true, nil
		case "unknown":
			return false, errors.New("redis down")
		}
		_, err := st.Head(ctx, "submissions/"+action+"/"+sub+".json")
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	j := NewJanitor(st, JanitorConfig{MinAge: time.Hour, StagedAge: 3 * time.Hour, Keep: keep, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})

	// Everything is young: nothing goes.
	s, err := j.Sweep(ctx)
	if err != nil || s.Deleted != 0 || s.Aborted != 0 {
		t.Fatalf("sweep of young uploads = %+v, %v; want nothing removed", s, err)
	}

	// Two hours on: orphans and the stale multipart upload go; the staged
	// upload is within its StagedAge.
	j.cfg.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	s, err = j.Sweep(ctx)
	if err != nil || s.Deleted != 2 || s.Aborted != 1 || s.Problems != 1 {
		t.Fatalf("sweep = %+v, %v; want 2 deleted, 1 aborted, 1 problem", s, err)
	}
	want := []string{"uploads/_staged/old", "uploads/act/queued/f/0", "uploads/act/recorded/f/0", "uploads/act/unknown/f/0", "uploads/other/layout"}
	if got, _ := st.List(ctx, "uploads/"); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if ups, _ := st.MultipartUploads(ctx, ""); len(ups) != 0 {
		t.Errorf("unfinished multipart uploads left: %v", ups)
	}

	// Four hours on, the staged upload is past its references' life.
	j.cfg.Now = func() time.Time { return time.Now().Add(4 * time.Hour) }
	if s, err = j.Sweep(ctx); err != nil || s.Deleted != 1 {
		t.Fatalf("sweep = %+v, %v; want the staged upload deleted", s, err)
	}
	if _, err := st.Head(ctx, "unrelated/act/orphan"); err != nil {
		t.Errorf("the janitor touched a key outside uploads/: %v", err)
	}
}

// TestJanitorRemovesPartialObjects: what a cut streamed PUT left under
// uploads/_partial/ goes after DefaultPartialAge even when MinAge is
// longer, and never before; a file of a kept submission stays.
func TestJanitorRemovesPartialObjects(t *testing.T) {
	st := newTestStore(t, testPart, 2*testPart)
	ctx := t.Context()
	for _, k := range []string{"uploads/_partial/act/cut/f/0", "uploads/act/kept/f/0"} {
		if _, err := st.Put(ctx, k, bytes.NewReader([]byte("data of "+k)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	keep := func(context.Context, string, string) (bool, error) { return true, nil }
	j := NewJanitor(st, JanitorConfig{MinAge: 24 * time.Hour, Keep: keep, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	j.cfg.Now = func() time.Time { return time.Now().Add(DefaultPartialAge - time.Minute) }
	if s, err := j.Sweep(ctx); err != nil || s.Deleted != 0 {
		t.Fatalf("sweep before the partial age = %+v, %v; want nothing removed", s, err)
	}
	j.cfg.Now = func() time.Time { return time.Now().Add(DefaultPartialAge + time.Minute) }
	if s, err := j.Sweep(ctx); err != nil || s.Deleted != 1 {
		t.Fatalf("sweep after the partial age = %+v, %v; want the partial object removed", s, err)
	}
	if got, _ := st.List(ctx, "uploads/"); !slices.Equal(got, []string{"uploads/act/kept/f/0"}) {
		t.Errorf("left %v, want only the kept file", got)
	}
}

// TestJanitorMeasuresAgesOnTheS3Clock runs the janitor of a worker whose
// clock is 2 minutes ahead of the S3 server's, with a minimum age of one
// minute: a file with no submission, a partial object and a multipart
// upload S3 has just begun, and a resumable upload the API has just
// created, are all seconds old on S3's clock, and stay. On the worker's
// own clock they look 2 minutes old. A worker behind, the same sweep
// after the ages have passed on S3's clock, removes them.
func TestJanitorMeasuresAgesOnTheS3Clock(t *testing.T) {
	st := newTestStore(t, testPart, 2*testPart)
	ctx := t.Context()
	tus := submission.TusKey(ulid.Make().String())
	for _, k := range []string{"uploads/act/orphan/f/0", submission.PartialPrefix + "act/cut/f/0", tus + ".info"} {
		if _, err := st.Put(ctx, k, bytes.NewReader([]byte("data of "+k)), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"uploads/act/open/f/0", tus} {
		if _, err := st.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &st.bucket, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	orphan := func(context.Context, string, string) (bool, error) { return false, nil }
	// sweep runs the janitor of a process whose clock is skew off, later
	// by later.
	sweep := func(skew, later time.Duration) Sweep {
		t.Helper()
		clock := func() time.Time { return time.Now().Add(skew) }
		j := NewJanitor(st, JanitorConfig{MinAge: time.Minute, TusExpiry: time.Minute, Keep: orphan,
			Now: func() time.Time { return clock().Add(later) }})
		j.clock = clock
		s, err := j.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := sweep(2*time.Minute, 0); s.Deleted+s.Aborted != 0 {
		t.Fatalf("a janitor 2 minutes ahead removed what is seconds old on S3's clock: %+v", s)
	}
	// A worker 2 minutes behind, later: past the minimum age, the tus
	// expiry and the allowance for the API's clock, on S3's clock.
	if s := sweep(-2*time.Minute, ClockAllowance+2*time.Minute); s.Deleted != 3 || s.Aborted != 2 {
		t.Fatalf("past every age on S3's clock: %+v, want 3 objects deleted and 2 multipart uploads aborted", s)
	}
}
