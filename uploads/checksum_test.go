package uploads

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/formq/formq/internal/testenv"
)

// TestOnePutObjectCarriesAChecksumTheServerChecks: a file small enough
// for one PutObject is sent with its SHA-256, which the S3 server checks
// against what it received and keeps with the object; a body that does
// not match the checksum is refused, not stored.
func TestOnePutObjectCarriesAChecksumTheServerChecks(t *testing.T) {
	st := newTestStore(t, testPart, 4*testPart)
	ctx := testenv.Context(t)
	for _, size := range []int{100, 1 << 20} {
		data := pngFile(size, uint64(size))
		obj, err := st.Put(ctx, "files/small", bytes.NewReader(data), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(data)
		head, err := st.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &st.bucket, Key: &obj.Key, ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(head.ChecksumSHA256); got != base64.StdEncoding.EncodeToString(want[:]) {
			t.Errorf("%d bytes: the object's SHA-256 checksum is %q, want the file's", size, got)
		}
	}

	// The server checks the checksum: a body that differs from it is refused.
	data := pngFile(1000, 7)
	other := sha256.Sum256(append([]byte{1}, data...))
	_, err := st.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &st.bucket, Key: aws.String("files/altered"), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(other[:])),
	})
	if err == nil {
		t.Fatal("a body that does not match its checksum was stored")
	}
	if keys, _ := st.List(ctx, "files/altered"); len(keys) != 0 {
		t.Errorf("the refused body left %v", keys)
	}
}
