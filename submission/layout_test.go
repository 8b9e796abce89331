package submission

import "testing"

func TestKeysRoundTrip(t *testing.T) {
	if a, id, ok := ParseRecordKey(RecordKey("create-user", "01J")); !ok || a != "create-user" || id != "01J" {
		t.Errorf("record key: %q %q %v", a, id, ok)
	}
	for _, bad := range []string{"submissions/x.json", "submissions/a/b/c.json", "uploads/a/b.json", "submissions/a/b.txt", "submissions//b.json"} {
		if _, _, ok := ParseRecordKey(bad); ok {
			t.Errorf("ParseRecordKey(%q) accepted", bad)
		}
	}
	key := UploadKey("create-user", "01J", "avatar", 12)
	p, ok := ParseUploadKey(key)
	if !ok || p != (UploadPlace{Action: "create-user", ID: "01J", Field: "avatar", N: 12}) {
		t.Errorf("upload key %q: %+v %v", key, p, ok)
	}
	v, ok := ParseUploadKey(VariantKey(key, "thumb-256.jpg"))
	if !ok || v.N != 12 || v.Variant != "thumb-256.jpg" || v.ID != "01J" {
		t.Errorf("variant key: %+v %v", v, ok)
	}
	for _, bad := range []string{StagedKey("01J"), "uploads/a/b/c", "uploads/a/b/c/x", "uploads/a/b/c/-1", "uploads/a/b/c/01", "uploads//b/c/0", "uploads/a/b/c/0/1", "records/a/b/c/0"} {
		if _, ok := ParseUploadKey(bad); ok {
			t.Errorf("ParseUploadKey(%q) accepted", bad)
		}
	}
	if id, ok := ParseStagedKey(StagedKey("01K")); !ok || id != "01K" {
		t.Errorf("staged key: %q %v", id, ok)
	}
	if _, ok := ParseStagedKey("uploads/_staged/a/b"); ok {
		t.Error("nested staged key accepted")
	}
}

func TestTusKeys(t *testing.T) {
	for _, tt := range []struct{ key, id, suffix string }{
		{TusKey("01J"), "01J", ""},
		{TusKey("01J") + TusInfoSuffix, "01J", TusInfoSuffix},
		{TusKey("01J") + TusPartSuffix, "01J", TusPartSuffix},
	} {
		if id, suffix, ok := ParseTusKey(tt.key); !ok || id != tt.id || suffix != tt.suffix {
			t.Errorf("ParseTusKey(%q) = %q %q %v", tt.key, id, suffix, ok)
		}
	}
	for _, bad := range []string{TusPrefix, TusPrefix + ".info", TusPrefix + "a/b", TusPrefix + "a.txt", StagedKey("01J"), "uploads/a/b/c/0"} {
		if _, _, ok := ParseTusKey(bad); ok {
			t.Errorf("ParseTusKey(%q) accepted", bad)
		}
	}
	if _, ok := ParseUploadKey(TusKey("01J")); ok {
		t.Errorf("a tus key parsed as a submission's file")
	}
}
