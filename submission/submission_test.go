package submission

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/record.golden.json")

// record is a submission with every field set, the way the API builds one.
func record() Submission {
	s := Submission{
		ID: "01JZ8Q3D6V5T2X9K4M7N0P1R2S", Action: "contact",
		Values: map[string]any{"name": "Ada", "age": 36.0, "topics": []any{"a", "b"}},
		Files: []File{{Field: "cv", Object: Object{
			Key: "uploads/contact/01JZ8Q3D6V5T2X9K4M7N0P1R2S/cv/0", Size: 1234,
			ContentType: "application/pdf", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Filename: "cv.pdf",
		}}},
		Bound:      map[string]any{"userId": "42"},
		Subject:    "user-42",
		ReceivedAt: time.Date(2025, 7, 1, 12, 30, 45, 123_000_000, time.UTC),
		Queue:      "default",
		Steps:      []Step{{Type: "webhook", Config: map[string]any{"url": "https://hooks.example.com/in"}}, {Type: "email"}},
		Revalidate: Revalidate{Paths: []string{"/guestbook"}, Tags: []string{"entries"}, Public: true},
	}
	s.ClientIP, s.UserAgent, s.RequestID = "203.0.113.7", "Mozilla/5.0", "req-0123456789abcdef"
	return s
}

// TestRecordJSON holds the record's JSON, which the worker receives in its
// task and keeps in S3, byte for byte to testdata/record.golden.json: a
// regrouping of the struct's fields cannot rename, reorder or nest a key.
func TestRecordJSON(t *testing.T) {
	got, err := json.MarshalIndent(record(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/record.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Fatalf("the record's JSON changed:\n%s\nwant (%s):\n%s", got, golden, want)
	}
	// Keys left out when empty stay left out.
	bare, err := json.Marshal(Submission{ID: "01X", Action: "a"})
	if err != nil {
		t.Fatal(err)
	}
	const wantBare = `{"id":"01X","action":"a","values":null,"files":null,"receivedAt":"0001-01-01T00:00:00Z","queue":"","revalidate":{"paths":null,"tags":null}}`
	if string(bare) != wantBare {
		t.Fatalf("an empty record is\n%s\nwant\n%s", bare, wantBare)
	}
	var back Submission
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, record()) {
		t.Fatalf("the record does not read back the same:\n%+v\nwant\n%+v", back, record())
	}
}
