// Drives formq's resumable uploads with tus-js-client, the tus project's
// own client, as a browser or a Node app would. Reads from stdin
//   {"scenario": "resume" | "restart" | "refused" | "cancel", "endpoint": URL,
//    "size": bytes, "chunkSize": bytes, "uploadUrl": URL (restart only)}
// and prints what happened as JSON. A tus-js-client error that the
// scenario does not expect exits 1 with its message.
import tus from "tus-js-client";
import { readFileSync } from "node:fs";

const { Upload } = tus;
const input = JSON.parse(readFileSync(0, "utf8"));

// file is size bytes that sniff as image/png.
function file(size) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7919 + (i >> 9)) & 0xff;
  Buffer.from("\x89PNG\r\n\x1a\n", "latin1").copy(b);
  return b;
}

const body = file(input.size);
const base = {
  endpoint: input.endpoint,
  chunkSize: input.chunkSize,
  retryDelays: [],
  metadata: { filename: "clip.png" },
};

// upload runs one tus-js-client Upload to its end: success, an error,
// or, with stopAfter, an abort once that many bytes were acknowledged.
function upload(options, { stopAfter, terminate } = {}) {
  return new Promise((resolve) => {
    const up = new Upload(body, {
      ...base,
      ...options,
      onChunkComplete(_chunk, acked) {
        if (stopAfter !== undefined && acked >= stopAfter && acked < input.size) {
          up.abort(Boolean(terminate)).then(
            () => resolve({ aborted: true, url: up.url, acked }),
            (err) => resolve({ error: String(err), url: up.url }),
          );
        }
      },
      onSuccess(payload) {
        const res = payload && payload.lastResponse;
        resolve({ url: up.url, ref: res ? res.getHeader("Formq-Upload-Ref") || "" : "" });
      },
      onError(err) {
        const res = err.originalResponse;
        resolve({
          error: err.message,
          url: up.url,
          status: res ? res.getStatus() : 0,
          contentType: res ? res.getHeader("Content-Type") || "" : "",
          body: res ? res.getBody() || "" : "",
        });
      },
    });
    up.start();
  });
}

async function head(url) {
  const res = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  return { status: res.status, offset: Number(res.headers.get("Upload-Offset") ?? -1) };
}

function fail(what, got) {
  process.stderr.write(`${what}: ${JSON.stringify(got)}\n`);
  process.exit(1);
}

let out;
switch (input.scenario) {
  case "resume": {
    // Interrupted after the first chunks, then resumed by a new Upload
    // from the URL the first one made, as after a reload.
    const first = await upload({}, { stopAfter: input.chunkSize });
    if (!first.aborted) fail("the first upload did not stop as planned", first);
    const stored = await head(first.url);
    const second = await upload({ uploadUrl: first.url });
    if (second.error) fail("the resumed upload failed", second);
    out = { firstUrl: first.url, acked: first.acked, stored, secondUrl: second.url, ref: second.ref, final: await head(second.url) };
    break;
  }
  case "restart": {
    // An upload URL the server no longer resumes (expired): tus-js-client
    // must start a new upload at the endpoint rather than fail.
    const res = await upload({ uploadUrl: input.uploadUrl });
    if (res.error) fail("the upload did not start again", res);
    out = { url: res.url, ref: res.ref };
    break;
  }
  case "stop": {
    const first = await upload({}, { stopAfter: input.chunkSize });
    if (!first.aborted) fail("the upload did not stop as planned", first);
    out = { url: first.url, stored: await head(first.url) };
    break;
  }
  case "cancel": {
    const first = await upload({}, { stopAfter: input.chunkSize, terminate: true });
    if (!first.aborted) fail("the upload was not cancelled", first);
    out = { url: first.url, after: await head(first.url) };
    break;
  }
  case "refused": {
    out = await upload({});
    break;
  }
  default:
    fail("unknown scenario", input.scenario);
}
process.stdout.write(JSON.stringify(out) + "\n");
