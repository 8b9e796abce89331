package routes

import (
	"net/http"
	"strings"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/actions/staging"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// CORS lets pages on allowed origins call formq with fetch and read the
// answers (field errors, status, events): the deployment's allowed origins
// and every action's origins. Posting is still checked per action by the
// origin guard; CORS only decides who may read. Admin routes are left out.
func CORS(r *actions.Registry, allowed []string) echo.MiddlewareFunc {
	origins := map[string]bool{}
	for _, o := range allowed {
		origins[strings.TrimRight(o, "/")] = true
	}
	for _, name := range r.Names() {
		a, _ := r.Get(name)
		for _, o := range a.Origins {
			origins[strings.TrimRight(o, "/")] = true
		}
	}
	allow := func(origin string) (bool, error) { return origins[origin], nil }
	// Resumable uploads send tus's methods and headers and read its
	// answers (offset, upload URL, the reference).
	tus := middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			r := c.Request()
			// An OPTIONS without Access-Control-Request-Method is tus's
			// discovery, not a preflight: tusd answers it.
			discovery := r.Method == http.MethodOptions && r.Header.Get(echo.HeaderAccessControlRequestMethod) == ""
			return !strings.HasPrefix(r.URL.Path, staging.TusPath) || discovery
		},
		AllowOriginFunc: allow,
		AllowMethods:    []string{http.MethodPost, http.MethodHead, http.MethodPatch, http.MethodDelete},
		AllowHeaders: []string{"Content-Type", "Authorization", "Tus-Resumable", "Upload-Length", "Upload-Metadata",
			"Upload-Offset", "X-Requested-With", staging.HeaderCaptcha},
		ExposeHeaders: []string{"Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Tus-Resumable", "Tus-Version",
			"Tus-Max-Size", "Tus-Extension", staging.HeaderUploadRef, "Retry-After", echo.HeaderXRequestID, staging.HeaderCaptchaGrant},
		AllowCredentials: true,
		MaxAge:           600,
	})
	rest := middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return strings.HasPrefix(p, "/admin") || strings.HasPrefix(p, staging.TusPath)
		},
		AllowOriginFunc: allow,
		AllowMethods:    []string{http.MethodGet, http.MethodPost},
		AllowHeaders:    []string{"Accept", "Content-Type", "Idempotency-Key", "Authorization", "Last-Event-ID", staging.HeaderCaptcha},
		ExposeHeaders:   []string{"Retry-After", "Idempotent-Replayed", "Location", echo.HeaderXRequestID, staging.HeaderCaptchaGrant},
		// Cookie sessions (the auth cookie) travel with credentials.
		AllowCredentials: true,
		MaxAge:           600,
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc { return rest(tus(next)) }
}
