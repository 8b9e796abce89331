package pages

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/formq/formq/actions/web"
	"github.com/labstack/echo/v4"
)

// JSONSchemaMediaType is the media type of GET /actions/{name}/schema.json.
const JSONSchemaMediaType = "application/schema+json"

// JSONSchema handles GET /actions/{name}/schema.json: the action's values
// as a JSON Schema (draft 2020-12), for ajv, JSON-Schema form libraries and
// code generators (actions.Action.JSONSchema). Public like the declaration
// at /schema; its $id is its own URL.
func (h *Pages) JSONSchema(c echo.Context) error {
	web.JSONErrors(c)
	a, ok := h.actions.Get(c.Param("name"))
	if !ok {
		return web.ErrActionNotFound
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // patterns read as written
	if err := enc.Encode(a.JSONSchema(h.site.Link(c, "/actions/"+a.Name+"/schema.json"))); err != nil {
		return err
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "public, max-age=60")
	if hd.Get(echo.HeaderAccessControlAllowOrigin) == "" {
		hd.Set(echo.HeaderAccessControlAllowOrigin, "*") // public, read without credentials
	}
	return c.Blob(http.StatusOK, JSONSchemaMediaType, body.Bytes())
}
