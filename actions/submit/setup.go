package handler

import (
	"fmt"
	"os"
	"slices"
)

// Prepare checks that the handler can serve what its declarations ask
// and loads their own templates; the API calls it once before serving.
// An action or upload profile with auth needs an Authenticator, and an
// action's template must read and parse.
func (h *Handler) Prepare() error {
	h.Pages.stamp = h.renderStamp
	for _, p := range h.Profiles {
		if p.Gate.Auth != "" && h.Auth == nil {
			return fmt.Errorf("upload profile %q has auth: %s but neither FORMQ_AUTH_HS256_SECRET nor FORMQ_AUTH_JWKS_URL is set", p.Name, p.Gate.Auth)
		}
	}
	for _, name := range h.Actions.Names() {
		a, _ := h.Actions.Get(name)
		if a.Auth != "" && h.Auth == nil {
			return fmt.Errorf("action %q has auth: %s but neither FORMQ_AUTH_HS256_SECRET nor FORMQ_AUTH_JWKS_URL is set", a.Name, a.Auth)
		}
		if a.Captcha != nil && h.Captchas == nil {
			return fmt.Errorf("action %q has a captcha but the handler has no CaptchaVerifier", a.Name)
		}
		if a.Template == "" {
			continue
		}
		text, err := os.ReadFile(a.Template)
		if err != nil {
			return fmt.Errorf("action %q: %w", a.Name, err)
		}
		if err := h.Pages.SetFormTemplate(a.Name, string(text)); err != nil {
			return err
		}
	}
	return nil
}

// CORSOrigins are the origins the CORS middleware answers besides each
// action's own: the deployment's allowed origins and every upload
// profile's.
func (h *Handler) CORSOrigins() []string {
	out := slices.Clone(h.AllowedOrigins)
	for _, p := range h.Profiles {
		out = append(out, p.Gate.Origins...)
	}
	return out
}
