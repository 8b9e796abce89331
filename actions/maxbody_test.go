package actions

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestDefaultMaxBodyFollowsUploads parses actions without and with max_body
// and checks the limit a request is held to: the declared uploads fit by
// default, and an explicit max_body is kept as written.
func TestDefaultMaxBodyFollowsUploads(t *testing.T) {
	const (
		mib = int64(1) << 20
		gib = int64(1) << 30
	)
	cases := []struct {
		name    string
		action  string // the action's body, indented under "a:"
		want    int64  // its MaxBody after parsing; 0 when the file is refused
		problem string // part of the problem when refused
	}{
		{"no uploads", "fields: {m: {type: text}}", DefaultMaxBody, ""},
		{"small upload keeps the floor", "uploads: {f: {max_size: 1MB}}", DefaultMaxBody, ""},
		{"upload just under the floor", "uploads: {f: {max_size: 9MB}}", DefaultMaxBody, ""},
		{"one large upload", "uploads: {blob: {max_size: 2GB}}", 2*gib + MaxBodyFieldRoom, ""},
		{"max_files multiplies", "uploads: {photos: {max_size: 8MB, max_files: 5}}", 40*mib + MaxBodyFieldRoom, ""},
		{"uploads add up", "uploads: {a: {max_size: 20MB}, b: {max_size: 5MB, max_files: 2}}", 30*mib + MaxBodyFieldRoom, ""},
		{"explicit max_body is kept", "max_body: 3GB\nuploads: {blob: {max_size: 2GB}}", 3 * gib, ""},
		{"explicit max_body may cap the sum", "max_body: 20MB\nuploads: {photos: {max_size: 8MB, max_files: 5}}", 20 * mib, ""},
		{"explicit max_body below the default floor", "max_body: 1MB", mib, ""},
		{"explicit max_body below one file", "max_body: 1GB\nuploads: {blob: {max_size: 2GB}}", 0, `field "blob": max_size 2GB is over the action's max_body 1GB`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "actions:\n  a:\n    " + strings.ReplaceAll(c.action, "\n", "\n    ") + "\n"
			list, err := Parse("actions.yaml", []byte(src))
			if c.problem != "" {
				if !errors.Is(err, ErrInvalidFile) || !strings.Contains(err.Error(), c.problem) {
					t.Fatalf("err = %v, want a problem with %q", err, c.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := list[0].MaxBody; got != c.want {
				t.Errorf("max_body = %d, want %d", got, c.want)
			}
		})
	}
}

func TestDefaultMaxBodyForSaturates(t *testing.T) {
	huge := []*Upload{{Name: "a", MaxSize: math.MaxInt64 / 2, MaxFiles: 3}}
	if got := DefaultMaxBodyFor(huge); got != math.MaxInt64 {
		t.Errorf("overflowing uploads: %d, want MaxInt64", got)
	}
	if got := DefaultMaxBodyFor(nil); got != DefaultMaxBody {
		t.Errorf("no uploads: %d, want %d", got, DefaultMaxBody)
	}
}

func TestRegistryAddDefaultMaxBodyFollowsUploads(t *testing.T) {
	r := NewRegistry()
	a := &Action{Name: "big", Uploads: []*Upload{{Name: "blob", MaxSize: 2 << 30}}}
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	if want := int64(2<<30) + MaxBodyFieldRoom; a.MaxBody != want {
		t.Errorf("max_body = %d, want %d", a.MaxBody, want)
	}
}
