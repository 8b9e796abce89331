// Compiles JSON Schemas with ajv (draft 2020-12, strict mode, ajv-formats)
// and validates values with them. Reads from stdin
//   [{"name": "...", "schema": {...}, "values": [...]}, ...]
// and prints one line of JSON:
//   [{"name": "...", "compileError": "..." | null, "valid": [true, false, ...], "errors": ["..." | null, ...]}]
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { readFileSync } from "node:fs";

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = cases.map(({ name, schema, values }) => {
  values = values || [];
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  let validate;
  try {
    validate = ajv.compile(schema);
  } catch (e) {
    return { name, compileError: String(e.message), valid: [], errors: [] };
  }
  const valid = [], errors = [];
  for (const v of values) {
    const ok = validate(v);
    valid.push(ok);
    errors.push(ok ? null : ajv.errorsText(validate.errors));
  }
  return { name, compileError: null, valid, errors };
});
process.stdout.write(JSON.stringify(out) + "\n");
