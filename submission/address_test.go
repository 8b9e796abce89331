package submission

import "testing"

// TestNormalizeAddressCountsOneMailboxOnce: the spellings of one Gmail
// mailbox (dots, +tags, googlemail.com, case) count as one, +tags are
// dropped everywhere, and other providers' dots stay.
func TestNormalizeAddressCountsOneMailboxOnce(t *testing.T) {
	for _, a := range []string{"victim@gmail.com", "v.i.c.t.i.m@gmail.com", "victim+1@gmail.com", "Victim+spam@GoogleMail.com",
		"vic.tim+x@googlemail.com", " VICTIM@gmail.com ", "victim@gmail.com.", "v.ictim+a+b@gmail.com"} {
		if got := NormalizeAddress(a); got != "victim@gmail.com" {
			t.Errorf("%q: %q", a, got)
		}
	}
	for in, want := range map[string]string{"a.b+news@example.com": "a.b@example.com", "+x@example.com": "+x@example.com", "a.b@example.org": "a.b@example.org"} {
		if got := NormalizeAddress(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	if AddressDomain("x+1@GoogleMail.com") != "gmail.com" {
		t.Error(AddressDomain("x+1@GoogleMail.com"))
	}
}
