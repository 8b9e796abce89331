package actions

import _ "embed"

// Schema is the JSON Schema (draft 2020-12) of the actions file, for
// editors and CI checks: every key with its type and help, the field
// types, rules, steps and upload profiles, unknown keys refused. It is the
// file actions/actions.schema.json; actions files point editors at it with
// a first line like
//
//	# yaml-language-server: $schema=../actions/actions.schema.json
//
// Rules across keys that a schema cannot state (min_length over
// max_length, an upload's max_size over max_body, a name both a field and
// an upload, a pattern that does not compile) are checked by Parse alone.
//
//go:embed actions.schema.json
var Schema []byte
