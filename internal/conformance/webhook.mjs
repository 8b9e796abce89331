// Verifies one webhook delivery with the standardwebhooks library (the
// reference implementation of the Standard Webhooks spec). Reads from stdin
//   {"secret": "whsec_...", "headers": {"webhook-id": ..., ...}, "body": "..."}
// and prints the verified payload as JSON; a delivery that does not verify
// exits 1 with the library's reason.
import { Webhook } from "standardwebhooks";
import { readFileSync } from "node:fs";

const { secret, headers, body } = JSON.parse(readFileSync(0, "utf8"));
try {
  const payload = new Webhook(secret).verify(body, headers);
  process.stdout.write(JSON.stringify(payload) + "\n");
} catch (e) {
  process.stderr.write(`not verified: ${e.message}\n`);
  process.exit(1);
}
