package uploads

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/formq/formq/internal/testenv"
)

// TestStoreHonoursCopyConditions checks on the real S3 that a copy (and a
// read) conditioned on the ETag of a checked version fails once the
// object was uploaded again: the server refuses it, not only our check
// of the copy's answer.
func TestStoreHonoursCopyConditions(t *testing.T) {
	st := newTestStore(t, testPart, 64<<20)
	ctx := testenv.Context(t)
	const key = "uploads/_staged/cond"
	first, second := pngFile(2*SniffLen, 1), randomBytes(300_000, 2)
	if err := st.PutBytes(ctx, key, first, "image/png"); err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Size != int64(len(first)) || snap.ETag == "" || !bytes.Equal(snap.Head, first[:SniffLen]) {
		t.Fatalf("snapshot: size %d, etag %q, %d head bytes", snap.Size, snap.ETag, len(snap.Head))
	}
	big, err := st.Snapshot(ctx, key+"-big")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot of a missing object: %+v, %v", big, err)
	}

	// Unchanged: the checked version is copied.
	if err := st.CopyChecked(ctx, key, snap.ETag, Object{Key: "uploads/a/1/f/0", Size: snap.Size, ContentType: "image/png"}); err != nil {
		t.Fatalf("copy of the unchanged object: %v", err)
	}
	if got, err := st.Get(ctx, "uploads/a/1/f/0"); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("copied %d bytes, %v", len(got), err)
	}

	if err := st.PutBytes(ctx, key, second, "image/png"); err != nil {
		t.Fatal(err)
	}
	// The server itself refuses both conditions.
	_, err = st.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: aws.String(st.bucket), Key: aws.String("uploads/a/2/f/0"),
		CopySource: aws.String(st.bucket + "/" + key), CopySourceIfMatch: aws.String(snap.ETag),
	})
	if !errors.Is(st.classify("copy", key, errOrNil(err)), ErrChanged) {
		t.Errorf("S3 copied a changed object despite x-amz-copy-source-if-match (err %v)", err)
	}
	_, err = st.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.bucket), Key: aws.String(key), IfMatch: aws.String(snap.ETag)})
	if !errors.Is(st.classify("get", key, errOrNil(err)), ErrChanged) {
		t.Errorf("S3 answered a changed object despite If-Match (err %v)", err)
	}
	if err := st.CopyChecked(ctx, key, snap.ETag, Object{Key: "uploads/a/3/f/0", Size: snap.Size, ContentType: "image/png"}); !errors.Is(err, ErrChanged) {
		t.Errorf("CopyChecked of a changed object: %v, want ErrChanged", err)
	}
	for _, k := range []string{"uploads/a/2/f/0", "uploads/a/3/f/0"} {
		if _, err := st.Head(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s was written by a refused copy (%v)", k, err)
		}
	}
}

// errOrNil makes a nil error one classify can take: a success is no
// refusal.
func errOrNil(err error) error {
	if err == nil {
		return errors.New("no error")
	}
	return err
}
