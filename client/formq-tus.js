// formq-tus.js: resumable uploads (tus 1.0) for formq.js, which loads this
// module beside itself only for actions with resumable upload fields, so
// forms without them never download it. Each file goes to formq's
// /uploads/tus/ before the form, its upload URL kept in localStorage (by
// action, field, file name, size and mtime) so that a dropped connection
// or a reloaded page goes on from the offset the server holds; the form
// then sends the file's reference. The few requests tus needs (POST,
// HEAD, PATCH) are made here rather than by tus-js-client, so formq's
// client stays without dependencies.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TUS = { "Tus-Resumable": "1.0.0" };

function tusRequest(method, url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    x.withCredentials = true;
    for (const k in headers) x.setRequestHeader(k, headers[k]);
    if (onProgress) x.upload.onprogress = onProgress;
    x.onload = () => resolve(x);
    x.onerror = x.ontimeout = x.onabort = () => reject(new Error("network"));
    x.send(body === undefined ? null : body);
  });
}

/** Where a field's resumable uploads are created, and the localStorage key of one file's upload. */
function tusPlace(form, field, file) {
  const u = new URL(form.action, location.href);
  const m = u.pathname.match(/\/actions\/([^/]+)\/?$/);
  u.pathname = u.pathname.slice(0, m.index) + "/uploads/tus/";
  u.search = "?action=" + m[1] + "&field=" + encodeURIComponent(field);
  return { endpoint: u.href, key: "formq:tus:" + [u.href, file.name, file.size, file.lastModified].join("|") };
}

const stored = {
  get: (k) => {
    try {
      return JSON.parse(localStorage.getItem(k));
    } catch (_) {
      return null;
    }
  },
  set: (k, v) => {
    try {
      localStorage.setItem(k, JSON.stringify(v));
    } catch (_) {}
  },
  drop: (k) => {
    try {
      localStorage.removeItem(k);
    } catch (_) {}
  },
};

/** An answer that ends the upload: formq refused it (limits, type, auth, origin). */
function tusRefusal(x) {
  let body = null;
  try {
    body = JSON.parse(x.responseText);
  } catch (_) {}
  const err = new Error((body && body.error && body.error.message) || `The server answered ${x.status}.`);
  return Object.assign(err, { refused: true, status: x.status, body, retryAfter: x.getResponseHeader("Retry-After") });
}

/**
 * Sends one file of a resumable upload field over tus, resuming an upload
 * of the same file begun earlier (in this page or before a reload).
 * Resolves with the upload reference to send as the field's value.
 */
export async function resumableUpload(form, field, file, options = {}) {
  const { endpoint, key } = tusPlace(form, field, file);
  const report = (n) => options.onProgress && options.onProgress(n);
  const saved = stored.get(key) || {};
  if (saved.ref && Date.parse(saved.expiresAt) > Date.now() + 60e3) {
    report(file.size);
    return saved.ref;
  }
  const retries = options.retries ?? 5;
  let url = saved.url;
  let offset = 0;
  let verified = false; // offset comes from the server, not a guess
  for (let i = 0; ; i++) {
    try {
      if (url && !verified) {
        const h = await tusRequest("HEAD", url, TUS);
        offset = h.status == 200 ? Number(h.getResponseHeader("Upload-Offset")) : -1;
        if (!(offset >= 0 && offset < file.size)) {
          // Gone (expired, refused, used) or finished without the
          // reference reaching this page: start again.
          stored.drop(key);
          url = null;
        }
      }
      if (!url) {
        const meta = "filename " + btoa(String.fromCharCode(...new TextEncoder().encode(file.name)));
        const head = { ...TUS, "Upload-Length": String(file.size), "Upload-Metadata": meta, Accept: "application/json" };
        const captcha = options.captcha; // a captcha action's answer, then the grant it bought
        if (captcha) head["Formq-Captcha"] = captcha.value;
        const c = await tusRequest("POST", endpoint, head);
        if (c.status != 201) throw tusRefusal(c);
        if (captcha && c.getResponseHeader("Formq-Captcha-Grant")) captcha.value = c.getResponseHeader("Formq-Captcha-Grant");
        const ref = c.getResponseHeader("Formq-Upload-Ref"); // an empty file is complete at once
        if (ref) {
          report(file.size);
          return ref;
        }
        url = new URL(c.getResponseHeader("Location"), endpoint).href;
        stored.set(key, { url });
        offset = 0;
      }
      verified = true;
      report(offset);
      const from = offset;
      const p = await tusRequest(
        "PATCH",
        url,
        { ...TUS, "Upload-Offset": String(from), "Content-Type": "application/offset+octet-stream", Accept: "application/json" },
        file.slice(from),
        (e) => report(from + e.loaded)
      );
      if (p.status == 200) {
        const up = JSON.parse(p.responseText).uploads[0];
        stored.set(key, { ref: up.ref, expiresAt: up.expiresAt });
        report(file.size);
        return up.ref;
      }
      if (p.status == 204 || p.status == 409) {
        // Part of the rest was taken, or the offset moved: ask again.
        verified = false;
        if (i >= retries) throw new Error("network");
        continue;
      }
      if (p.status == 404 || p.status == 410) {
        stored.drop(key);
        url = null;
        if (i >= retries) throw tusRefusal(p);
        continue;
      }
      throw tusRefusal(p);
    } catch (err) {
      if (err.refused || i >= retries || navigator.onLine === false) throw err;
      verified = false; // a dropped connection: the server kept what arrived
      await sleep(500 * 2 ** Math.min(i, 4));
    }
  }
}

/**
 * Uploads the files of the form's resumable fields over tus, one after
 * another, and puts their references in fd in place of the files. For an
 * action with a captcha, captcha is {name, value} of its answer: sent with
 * each creation, replaced by the grant the first one answers.
 * Returns what to call once the form is accepted: it forgets the uploads'
 * URLs kept in localStorage.
 */
export async function sendResumable(form, decl, fd, emit, captcha) {
  const fields = ((decl && decl.uploads) || []).filter((u) => u.resumable).map((u) => u.name);
  const jobs = [];
  for (const name of fields) for (const v of fd.getAll(name)) if (v instanceof File && v.name) jobs.push({ field: name, file: v, loaded: 0 });
  if (!jobs.length) return () => {};
  const total = jobs.reduce((n, j) => n + j.file.size, 0);
  const tick = () =>
    emit({
      loaded: jobs.reduce((n, j) => n + j.loaded, 0),
      total,
      files: jobs.map((j) => ({ field: j.field, name: j.file.name, size: j.file.size, loaded: j.loaded })),
    });
  for (const j of jobs) {
    j.ref = await resumableUpload(form, j.field, j.file, { onProgress: (n) => ((j.loaded = n), tick()), captcha });
  }
  // The uploads spent the captcha's answer: the post sends their grant.
  if (captcha) fd.set(captcha.name, captcha.value);
  for (const name of fields) {
    const rest = fd.getAll(name).filter((v) => typeof v == "string"); // kept references
    fd.delete(name);
    for (const v of rest) fd.append(name, v);
  }
  for (const j of jobs) fd.append(j.field, j.ref);
  return () => jobs.forEach((j) => stored.drop(tusPlace(form, j.field, j.file).key));
}
