// Usage: node validate.mjs ASYNCAPI.json EVENTS.json
//
// 1. Parses and validates the AsyncAPI document with the official parser (@asyncapi/parser):
//    any error-level diagnostic fails.
// 2. Validates every recorded event (EVENTS.json: [{"from": "server"|"client", "event": {...}}])
//    against the payload schema of the message named by its `type`, with Ajv.
// Prints one line per problem; exits 1 if there is any.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";
import Ajv from "ajv";

const [docPath, eventsPath] = process.argv.slice(2);
const text = readFileSync(docPath, "utf8");
const events = JSON.parse(readFileSync(eventsPath, "utf8"));
let failed = false;

const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
for (const d of diagnostics) {
  // severity 0 is an error; warnings and hints are printed but do not fail.
  const level = ["error", "warning", "info", "hint"][d.severity] ?? "error";
  console.log(`asyncapi ${level}: ${d.message} at ${d.path.join("/")}`);
  if (d.severity === 0) failed = true;
}
if (!document) {
  console.log("asyncapi: the document did not parse");
  process.exit(1);
}

const raw = JSON.parse(text);
// Strict off: the schemas carry OpenAPI-style `format`s (int64…) Ajv does not know.
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: "asyncapi.json", components: raw.components });
const validators = new Map();
let checked = 0;
for (const { from, event } of events) {
  const key = `${from}.${event.type}`;
  if (!raw.components.messages[key]) {
    console.log(`event: no message ${key} in the document: ${JSON.stringify(event)}`);
    failed = true;
    continue;
  }
  if (!validators.has(key)) {
    validators.set(
      key,
      ajv.compile({ $ref: `asyncapi.json#/components/messages/${key}/payload` }),
    );
  }
  const validate = validators.get(key);
  if (!validate(event)) {
    console.log(`event ${key} does not match its schema: ${ajv.errorsText(validate.errors)}\n  ${JSON.stringify(event)}`);
    failed = true;
  }
  checked += 1;
}
console.log(`checked ${checked} events against ${raw.components.messages ? Object.keys(raw.components.messages).length : 0} messages`);
process.exit(failed ? 1 : 0);
