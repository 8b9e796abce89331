package wire

import (
	"slices"
	"testing"
)

func TestSentinelOptions(t *testing.T) {
	fo, err := SentinelOptions("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/3")
	if err != nil || fo == nil || fo.MasterName != "mymaster" || fo.DB != 3 || fo.Password != "pw" ||
		!slices.Equal(fo.SentinelAddrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) {
		t.Fatalf("options %+v, %v", fo, err)
	}
	if fo, err := SentinelOptions("redis://127.0.0.1:6379/0"); fo != nil || err != nil {
		t.Errorf("a plain redis URL: %+v, %v; want nil, nil", fo, err)
	}
	for _, bad := range []string{"redis+sentinel://10.0.0.1:26379", "redis+sentinel:///mymaster", "redis+sentinel://h:1/m/x"} {
		if _, err := SentinelOptions(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
