package admin

import (
	"strings"
	"testing"
)

// TestRosterRoles: emails match ignoring case, groups exactly, the
// highest matching role wins, and nobody else gets a role.
func TestRosterRoles(t *testing.T) {
	r, err := ParseRoster(" Alice@Example.org=admin , group:ops=viewer,bob=viewer,group:ops=admin,carol@example.org=viewer")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		email, user string
		groups      []string
		want        Role
	}{
		{"alice@example.org", "", nil, RoleAdmin},
		{"ALICE@EXAMPLE.ORG", "", nil, RoleAdmin},
		{"", "bob", nil, RoleViewer},
		{"carol@example.org", "", []string{"ops"}, RoleAdmin}, // group:ops is listed twice; admin wins
		{"dave@example.org", "", []string{"OPS", "staff"}, RoleNone},
		{"mallory@example.org", "alice", nil, RoleNone},
	} {
		if got := r.RoleOf(c.email, c.user, c.groups); got != c.want {
			t.Errorf("RoleOf(%q, %q, %v) = %s, want %s", c.email, c.user, c.groups, got, c.want)
		}
	}
}

// TestRosterRefusesWhatItCannotRead names the entry and the fix.
func TestRosterRefusesWhatItCannotRead(t *testing.T) {
	for _, s := range []string{"alice@example.org", "alice@example.org=owner", "=admin", "group:=viewer"} {
		_, err := ParseRoster(s)
		if err == nil || !strings.Contains(err.Error(), "FORMQ_ADMINS") {
			t.Errorf("ParseRoster(%q) = %v", s, err)
		}
	}
}

// TestSignInNeedsAWayIn: named admins without a proxy, or a proxy
// without named admins, are refused at start.
func TestSignInNeedsAWayIn(t *testing.T) {
	for _, c := range []Config{{Admins: "a@example.org=admin"}, {Proxies: []string{"10.0.0.1"}}, {Admins: "a@b=admin", Proxies: []string{"nope"}}} {
		if _, err := newSignIn(c, nil, ""); err == nil {
			t.Errorf("newSignIn(%+v) accepted", c)
		}
	}
	if _, err := newSignIn(Config{Admins: "a@example.org=admin", Proxies: []string{"10.0.0.1", "fd00::/8"}}, nil, ""); err != nil {
		t.Error(err)
	}
}
