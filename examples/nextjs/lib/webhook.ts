import { Webhook, WebhookVerificationError } from "standardwebhooks";

// formq signs its webhooks per the Standard Webhooks spec: the headers
// webhook-id, webhook-timestamp and webhook-signature ("v1," + base64 of
// HMAC-SHA256 over "id.timestamp.body"). A secret written "whsec_<base64>"
// is the base64 key; any other string (16 characters or more) is the key
// itself, as formq reads it.
function verifier(secret: string): Webhook {
  const s = secret.trim();
  if (s.startsWith("whsec_")) return new Webhook(s);
  return new Webhook(new TextEncoder().encode(s), { format: "raw" });
}

export type Verified<T> = { ok: true; id: string; body: T } | { ok: false; status: number; error: string };

/**
 * Verifies a signed request from formq against the secret in the named
 * environment variable, and parses its JSON body. The signature also
 * covers the timestamp: requests older or newer than five minutes are
 * refused, so a captured request cannot be replayed later.
 */
export async function verify<T>(request: Request, secretEnv: string): Promise<Verified<T>> {
  const secret = process.env[secretEnv];
  if (!secret) return { ok: false, status: 500, error: `${secretEnv} is not set` };
  const payload = await request.text();
  const headers = {
    "webhook-id": request.headers.get("webhook-id") ?? "",
    "webhook-timestamp": request.headers.get("webhook-timestamp") ?? "",
    "webhook-signature": request.headers.get("webhook-signature") ?? "",
  };
  try {
    const body = verifier(secret).verify(payload, headers) as T;
    return { ok: true, id: headers["webhook-id"], body };
  } catch (err) {
    if (err instanceof WebhookVerificationError) return { ok: false, status: 401, error: err.message };
    throw err;
  }
}
