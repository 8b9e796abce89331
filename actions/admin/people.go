package admin

// Named admins: the roster of who may use the admin side with which role,
// the person a request acts for, and the role check every route makes.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// Role is what a person may do on the admin side. Roles are ordered: a
// higher role may do everything a lower one may.
type Role int

// The roles. A viewer reads the inbox and the submissions; an admin also
// exports, erases, redelivers, releases spam, runs bulk actions, binds
// arguments, reads the audit log and opens the queue dashboard.
const (
	RoleNone Role = iota
	RoleViewer
	RoleAdmin
)

// String is the role's name as the roster and the audit log write it.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// How a person signed in, as the audit log records it.
const (
	ViaToken = "token" // the shared admin token, for machines
	ViaProxy = "proxy" // trusted headers of an authenticating proxy
	ViaOIDC  = "oidc"  // formq's own OpenID Connect sign-in
)

// Person is who a request to the admin side acts for.
type Person struct {
	// Who names the person in the audit log and the inbox: the email,
	// else the user name; "token" for the shared admin token.
	Who    string   `json:"who"`
	Email  string   `json:"email,omitempty"`
	User   string   `json:"user,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Role   Role     `json:"-"`
	Via    string   `json:"via"`
	// SignOut is where the inbox's sign-out link goes; empty for the
	// token, which has no session.
	SignOut string `json:"-"`
}

// IsAdmin says whether the person has the admin role.
func (p *Person) IsAdmin() bool { return p != nil && p.Role >= RoleAdmin }

// tokenPerson is who requests with the shared admin token act for.
var tokenPerson = &Person{Who: "token", Role: RoleAdmin, Via: ViaToken}

// Roster maps people to roles: by email or user name, and by group.
// A person matching several entries gets the highest role.
type Roster struct {
	people map[string]Role // lower-cased email or user name
	groups map[string]Role // group name as the identity provider sends it
}

// ParseRoster reads FORMQ_ADMINS: a comma list of WHO=ROLE where WHO is
// an email (or user name) or group:NAME, and ROLE is viewer or admin,
// as in "alice@example.org=admin,group:support=viewer".
func ParseRoster(s string) (*Roster, error) {
	r := &Roster{people: map[string]Role{}, groups: map[string]Role{}}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		who, roleName, ok := strings.Cut(entry, "=")
		who, roleName = strings.TrimSpace(who), strings.TrimSpace(roleName)
		var role Role
		switch roleName {
		case "viewer":
			role = RoleViewer
		case "admin":
			role = RoleAdmin
		}
		if !ok || who == "" || role == RoleNone {
			return nil, fmt.Errorf("FORMQ_ADMINS: %q: want WHO=viewer or WHO=admin, WHO an email or group:NAME", entry)
		}
		if g, isGroup := strings.CutPrefix(who, "group:"); isGroup {
			if g == "" {
				return nil, fmt.Errorf("FORMQ_ADMINS: %q: name the group after the prefix group", entry)
			}
			r.groups[g] = max(r.groups[g], role)
			continue
		}
		who = strings.ToLower(who)
		r.people[who] = max(r.people[who], role)
	}
	return r, nil
}

// Empty says whether the roster names nobody.
func (r *Roster) Empty() bool { return r == nil || len(r.people)+len(r.groups) == 0 }

// RoleOf is the highest role the roster gives a person with this email,
// user name and groups; RoleNone when it names none of them.
func (r *Roster) RoleOf(email, user string, groups []string) Role {
	if r == nil {
		return RoleNone
	}
	role := RoleNone
	for _, who := range []string{email, user} {
		if who != "" {
			role = max(role, r.people[strings.ToLower(who)])
		}
	}
	for _, g := range groups {
		role = max(role, r.groups[g])
	}
	return role
}

// person builds the Person of a signed-in identity, or refuses one the
// roster does not name.
func (r *Roster) person(email, user string, groups []string, via string) (*Person, error) {
	p := &Person{Email: email, User: user, Groups: slices.Clip(groups), Via: via, Who: email}
	if p.Who == "" {
		p.Who = user
	}
	if p.Role = r.RoleOf(email, user, groups); p.Role == RoleNone {
		return nil, ErrNotAnAdmin.With(fmt.Errorf("%s (%s) is not in FORMQ_ADMINS", p.Who, via),
			"You are signed in as "+p.Who+", who is not an admin of this formq.")
	}
	return p, nil
}

// Errors of the sign-in and the role check.
var (
	// ErrNotAnAdmin refuses a signed-in person the roster does not name.
	ErrNotAnAdmin = web.ErrForbidden.With(errors.New("not in the roster"), "You are signed in, but not as an admin of this formq.")
	// ErrNeedsAdmin refuses a viewer an admin's action.
	ErrNeedsAdmin = web.ErrForbidden.With(errors.New("needs the admin role"), "This needs the admin role; you may read submissions but not export, erase or redeliver them.")
)

// personKey is where the sign-in puts the request's Person.
const personKey = "formq.admin.person"

// Me is the person the request acts for, once the sign-in let it
// through; nil before.
func Me(c echo.Context) *Person {
	p, _ := c.Get(personKey).(*Person)
	return p
}

// Allow lets through requests of people with at least the role; the
// others get 403 forbidden. It goes after SignIn, one per route:
// e.GET(path, handler, signIn..., admin.Allow(admin.RoleAdmin)).
func Allow(role Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := must(c, role); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// must refuses the request unless its person has at least the role: the
// check of Allow, for handlers whose operations need different roles.
func must(c echo.Context, role Role) error {
	p := Me(c)
	if p == nil {
		return web.ErrUnauthenticated.With(errors.New("no signed-in person"))
	}
	if p.Role < role {
		return ErrNeedsAdmin.With(fmt.Errorf("%s is a %s, this needs %s", p.Who, p.Role, role))
	}
	return nil
}

// statusOf is an error's HTTP status.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return web.AsError(err).Status
}
