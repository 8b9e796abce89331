package routes_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/formq/formq/actions/staging"
)

// stage uploads files through POST /uploads and returns the answer.
func stage(t *testing.T, st *upStack, query string, parts ...part) (*http.Response, answer) {
	t.Helper()
	body, ct := form(parts...)
	return post(t, st.url+"/uploads?"+query, body, ct)
}

func submitRefs(t *testing.T, st *upStack, vals url.Values) (*http.Response, answer) {
	t.Helper()
	return post(t, st.url+"/actions/upload-test", strings.NewReader(vals.Encode()), "application/x-www-form-urlencoded")
}

func TestStagedUploadReferences(t *testing.T) {
	st := startUploads(t)
	ctx := context.Background()
	png := pngOf(50_000)
	resp, a := stage(t, st, "profile=avatars", part{field: "file", filename: `..\me.png`, data: png})
	if resp.StatusCode != http.StatusCreated || len(a.Uploads) != 1 {
		t.Fatalf("POST /uploads: status %d, %+v", resp.StatusCode, a)
	}
	up := a.Uploads[0]
	sum := sha256.Sum256(png)
	if up.Size != int64(len(png)) || up.ContentType != "image/png" || up.SHA256 != hex.EncodeToString(sum[:]) || up.Filename != "me.png" || up.Ref == "" {
		t.Fatalf("staged upload %+v", up)
	}

	// The reference stands in for the file; the object moves to the
	// submission's key and the staged copy goes.
	resp, a = submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {up.Ref}})
	if resp.StatusCode != http.StatusAccepted || len(a.Submission.Files) != 1 {
		t.Fatalf("submit with a reference: status %d, %+v", resp.StatusCode, a)
	}
	f := a.Submission.Files[0]
	if f.Key != "uploads/upload-test/"+a.Submission.ID+"/avatar/0" || f.Size != up.Size || f.SHA256 != up.SHA256 || f.ContentType != "image/png" || f.Filename != "me.png" {
		t.Errorf("attached file %+v", f)
	}
	got, err := st.store.Get(ctx, f.Key)
	if err != nil || !bytes.Equal(got, png) {
		t.Errorf("the submission's object differs from the upload (err %v)", err)
	}
	if keys, _ := st.store.List(ctx, "uploads/_staged/"); len(keys) != 0 {
		t.Errorf("staged objects left after use: %v", keys)
	}

	// Used once, gone: a second submission cannot take it.
	resp, a = submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {up.Ref}})
	if resp.StatusCode != http.StatusUnprocessableEntity || len(a.Errors["avatar"]) == 0 {
		t.Errorf("reused reference: status %d, errors %v", resp.StatusCode, a.Errors)
	}
}

func TestReferencesThatDoNotFit(t *testing.T) {
	st := startUploads(t)
	html := []byte("<html><body>not an image</body></html>")
	_, docs := stage(t, st, "profile=docs", part{field: "file", filename: "page.png", data: html}, part{field: "file", filename: "big.png", data: pngOf(2 << 20)})
	_, scoped := stage(t, st, "action=upload-test&field=doc", part{field: "file", filename: "a.png", data: pngOf(100)})
	if len(docs.Uploads) != 2 || len(scoped.Uploads) != 1 {
		t.Fatalf("staging failed: %+v %+v", docs, scoped)
	}
	valid := docs.Uploads[1].Ref
	tests := []struct {
		name, ref, want string
	}{
		{"html staged under a profile without types, used for an image field", docs.Uploads[0].Ref, "text/html"},
		{"over the field's size", valid, "too large"},
		{"scoped to another field", scoped.Uploads[0].Ref, "does not belong"},
		{"tampered", valid[:len(valid)-4] + "AAAA", "does not belong"},
		{"not a reference", "uploads/_staged/guess", "does not belong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, a := submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {tt.ref}})
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(strings.Join(a.Errors["avatar"], " "), tt.want) {
				t.Errorf("status %d, errors %v; want 422 with %q", resp.StatusCode, a.Errors, tt.want)
			}
		})
	}
	// Refused submissions leave the staged files for another try, and no
	// copies under the action.
	keys, _ := st.store.List(context.Background(), "uploads/upload-test/")
	if len(keys) != 0 {
		t.Errorf("copies left by refused submissions: %v", keys)
	}
}

func TestStagedUploadRefusals(t *testing.T) {
	st := startUploads(t)
	tests := []struct {
		name, query string
		parts       []part
		status      int
	}{
		{"unknown profile", "profile=nope", []part{{field: "file", filename: "a.png", data: pngOf(10)}}, http.StatusNotFound},
		{"no scope", "", []part{{field: "file", filename: "a.png", data: pngOf(10)}}, http.StatusBadRequest},
		{"type not allowed", "profile=avatars", []part{{field: "file", filename: "a.png", data: []byte("<html>")}}, http.StatusUnprocessableEntity},
		{"too large", "profile=avatars", []part{{field: "file", filename: "a.png", data: pngOf(1<<20 + 1)}}, http.StatusUnprocessableEntity},
		{"three files for two refuse all", "profile=docs", []part{{field: "file", filename: "a.png", data: pngOf(6 << 20)}, {field: "file", filename: "b.png", data: pngOf(10)}, {field: "file", filename: "c.png", data: pngOf(10)}}, http.StatusUnprocessableEntity},
		{"no file", "profile=docs", []part{{field: "x", value: "y"}}, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, a := stage(t, st, tt.query, tt.parts...)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d (%+v), want %d", resp.StatusCode, a, tt.status)
			}
			st.assertEmpty(t)
		})
	}
}

func TestPresignedDirectUpload(t *testing.T) {
	st := startUploads(t)
	presign := func(t *testing.T, in map[string]string) (*http.Response, staging.PresignAnswer) {
		t.Helper()
		return postPresign(t, st, in)
	}
	toS3 := func(t *testing.T, p staging.PresignAnswer, data []byte) int {
		t.Helper()
		code, err := postToS3(p, data)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}

	t.Run("declared type not allowed", func(t *testing.T) {
		if resp, _ := presign(t, map[string]string{"profile": "avatars", "contentType": "text/html"}); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("status %d, want 422", resp.StatusCode)
		}
	})
	t.Run("upload and use", func(t *testing.T) {
		resp, p := presign(t, map[string]string{"profile": "avatars", "contentType": "image/png", "filename": "../me.png"})
		if resp.StatusCode != http.StatusCreated || p.URL == "" || p.Fields["key"] == "" || p.Ref == "" || p.MaxSize != 1<<20 {
			t.Fatalf("presign: status %d, %+v", resp.StatusCode, p)
		}
		if code := toS3(t, p, pngOf(2<<20)); code < 400 {
			t.Errorf("S3 took a file over the policy's size: %d", code)
		}
		png := pngOf(30_000)
		if code := toS3(t, p, png); code >= 300 {
			t.Fatalf("S3 refused the presigned upload: %d", code)
		}
		resp2, a := submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {p.Ref}})
		if resp2.StatusCode != http.StatusAccepted || len(a.Submission.Files) != 1 {
			t.Fatalf("submit: status %d, %+v", resp2.StatusCode, a)
		}
		if f := a.Submission.Files[0]; f.Size != int64(len(png)) || f.ContentType != "image/png" || f.Filename != "me.png" {
			t.Errorf("attached %+v", f)
		}
	})
	t.Run("bytes that are not what was declared", func(t *testing.T) {
		_, p := presign(t, map[string]string{"profile": "avatars", "contentType": "image/png"})
		if code := toS3(t, p, []byte("<html><script>alert(1)</script></html>")); code >= 300 {
			t.Fatalf("S3 refused the upload: %d", code)
		}
		resp, a := submitRefs(t, st, url.Values{"name": {"Ada"}, "avatar": {p.Ref}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(strings.Join(a.Errors["avatar"], ""), "text/html") {
			t.Errorf("status %d, errors %v; want the sniffed type refused", resp.StatusCode, a.Errors)
		}
	})
}
