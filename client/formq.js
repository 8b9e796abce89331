// formq.js: enhances forms that post to formq. One ES module (it loads
// formq-tus.js from beside itself only for resumable uploads), no
// dependencies, no build step. Without it (or when it fails to load) the
// same forms post natively and formq answers with pages and redirects.
//
//   <script type="module" src="https://forms.example.com/formq.js"></script>
//   <form data-formq method="post" action="https://forms.example.com/actions/signup">
//
// Events (on the form, bubbling): formq:submit (cancelable), formq:progress,
// formq:success, formq:invalid, formq:error, formq:status, formq:waiting.

const schemas = new Map();
const state = new WeakMap();

// The words formq.js shows, in English. strings() and data-formq-text-*
// replace them; a form in a lang of LANGS gets formq-i18n-{lang}.js.
const EN = {
  summary: "Please fix the errors below.",
  network: "The form could not reach the server. Your answers are still here: try again.",
  offline: "You are offline. Your answers are still here: submit again once you are back online.",
  saved: "Saved — will send when you're back online.",
  upload: "The upload could not reach the server. Your answers are still here: try again, and the upload goes on where it stopped.",
  retry: "Try again in {n} seconds.",
  retryOne: "Try again in 1 second.",
  answered: "The server answered {status}.",
  thanks: "Thank you, your submission was received.",
  kept: "{files} kept — choose another to replace it",
  omitted: "Too long to bring back: please enter it again.",
  queued: "Queued",
  processing: "Processing",
  completed: "Completed",
  failed: "Failed",
  rejected: "Rejected",
  step: "step {i} of {n}: {name}",
};
const LANGS = ["de"];
const words = { "": {} };
const shipped = {};

/** Replaces formq.js's words on this page: for every language, or for lang only. */
export function strings(w, lang = "") {
  Object.assign((words[lang] ||= {}), w);
}

/** The language of an element: its (or its nearest ancestor's) lang, primary subtag. */
const langOf = (el) => ((el.closest && el.closest("[lang]")) || { lang: "" }).lang.toLowerCase().split("-")[0];

/** Loads the shipped words of an element's language. */
const language = (el, l = langOf(el)) =>
  LANGS.includes(l) &&
  (shipped[l] ||= import(new URL(`formq-i18n-${l}.js`, import.meta.url).href).then((m) => (shipped[l] = m.default), () => (shipped[l] = 0)));

/** The word for key as shown in el, with {name}s filled from vars. */
export function text(el, key, vars = {}) {
  const a = "data-formq-text-" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
  const l = langOf(el);
  const on = el.closest && el.closest(`[${a}]`);
  const w = on ? on.getAttribute(a) : [words[l], words[""], shipped[l], EN].find((d) => d && d[key] != null)[key];
  return w.replace(/\{(\w+)\}/g, (m, k) => vars[k] ?? m);
}

const fire = (el, name, detail, cancelable) =>
  el.dispatchEvent(new CustomEvent("formq:" + name, { bubbles: true, cancelable: !!cancelable, detail }));

const newKey = () =>
  crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(18)), (b) => b.toString(16)).join("");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const human = (n) =>
  n >= 1 << 30 ? +(n / (1 << 30)).toFixed(1) + " GB" : n >= 1 << 20 ? +(n / (1 << 20)).toFixed(1) + " MB" : n >= 1024 ? Math.round(n / 1024) + " KB" : n + " bytes";

function st(form) {
  let s = state.get(form);
  if (!s) {
    const k = form.elements._idempotency;
    state.set(form, (s = { key: (k && k.value) || newKey() }));
  }
  return s;
}

/** The URL of the action's schema, from the form's action URL. */
function schemaURL(form) {
  const u = new URL(form.action, location.href);
  if (!/\/actions\/[^/]+\/?$/.test(u.pathname)) return null;
  u.pathname = u.pathname.replace(/\/?$/, "/schema");
  u.search = "";
  return u.href;
}

/** Loads (once per page) the public declaration of the form's action; null when it cannot. */
export function schema(form) {
  const url = schemaURL(form);
  if (!url) return Promise.resolve(null);
  if (!schemas.has(url)) {
    schemas.set(
      url,
      fetch(url, { headers: { Accept: "application/json" }, credentials: "omit" })
        .then((r) => (r.ok ? r.json() : null))
        .catch(() => schemas.delete(url) && null) // offline: ask again next time
    );
  }
  return schemas.get(url);
}

/** The _rendered stamp of an action with min_fill_time. */
const stamp = (form) =>
  schema(form).then((d) => d && d.minFillTime && fetch(schemaURL(form).replace(/schema$/, "stamp"), { cache: "no-store" }).then((r) => r.json()).then((b) => b.rendered).catch(() => null));

const values = (fd, name, trim) =>
  fd.getAll(name).filter((v) => typeof v == "string").map((v) => (trim ? v.trim() : v)).filter((v) => v !== "");

const typeOK = (type, allowed) =>
  allowed.some((a) => a == type || (a.endsWith("/*") && type.startsWith(a.slice(0, -1)) && type != "image/svg+xml"));

/** Checks a form's data against the action's declaration: field errors by name. */
export function check(form, s, fd = new FormData(form)) {
  const errs = {};
  const add = (name, msg) => (errs[name] = errs[name] || []).push(msg);
  for (const f of s.fields) {
    const m = f.messages || {};
    const vals = values(fd, f.name, f.type != "textarea" && f.type != "password");
    if (f.type == "boolean" || !vals.length) {
      if (f.required && !vals.length) add(f.name, m.required);
      continue;
    }
    for (const v of f.multiple ? vals : vals.slice(0, 1)) {
      const n = [...v].length;
      if (f.minLength != null && n < f.minLength) add(f.name, m.min_length);
      if (f.maxLength != null && n > f.maxLength) add(f.name, m.max_length);
      if (f.pattern) {
        try {
          if (!new RegExp(f.pattern, "u").test(v)) add(f.name, m.pattern);
        } catch (_) {}
      }
      if (f.options && !f.options.some((o) => o.value == v)) add(f.name, m.options);
      for (const c of f.checks || []) if (c.refuse ? new RegExp(c.refuse, c.ignoreCase ? "iu" : "u").test(v) : v != values(fd, c.sameAs, f.type != "textarea" && f.type != "password")[0]) add(f.name, m[c.rule]);
      let bad = false;
      if (f.type == "email") bad = !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v);
      if (f.type == "url") bad = !/^https?:\/\/[^\s/]+/i.test(v);
      if (f.type == "date") bad = !/^\d{4}-\d{2}-\d{2}$/.test(v);
      if (f.type == "number" || f.type == "integer") {
        const x = Number(v);
        bad = f.type == "integer" ? !/^[-+]?\d+$/.test(v) : !isFinite(x);
        if (!bad && f.min != null && x < f.min) add(f.name, m.min);
        if (!bad && f.max != null && x > f.max) add(f.name, m.max);
      }
      if (bad) add(f.name, m.format);
    }
  }
  for (const u of s.uploads) {
    const m = u.messages;
    const files = fd.getAll(u.name).filter((v) => v instanceof File && v.name);
    const kept = form.querySelectorAll(`input[data-formq-kept="${u.name}"]`).length;
    if (u.required && !files.length && !kept) add(u.name, m.required);
    if (files.length > u.maxFiles) add(u.name, m.max_files);
    for (const file of files) {
      if (file.size > u.maxSize) add(u.name, m.max_size);
      else if (u.types && u.types.length && file.type && !typeOK(file.type, u.types)) add(u.name, m.types.replace("{type}", (file.name.match(/\.(\w+)$/) || [, file.type])[1].toUpperCase()));
    }
  }
  for (const k in errs) errs[k] = [...new Set(errs[k].filter(Boolean))];
  return errs;
}

function field(form, name) {
  const el = form.elements.namedItem(name);
  return el && !el.tagName && el.length ? el[0] : el;
}

const describe = (el, id, on) => {
  const ids = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter((x) => x && x != id);
  if (on) ids.push(id);
  ids.length ? el.setAttribute("aria-describedby", ids.join(" ")) : el.removeAttribute("aria-describedby");
};

/** Removes the errors and notices shown on a form. */
export function clear(form) {
  form.querySelectorAll("[data-formq-error]").forEach((e) => {
    const el = e.id && form.querySelector(`[aria-describedby~="${e.id}"]`);
    if (el) {
      describe(el, e.id, false);
      el.removeAttribute("aria-invalid");
    }
    e.remove();
  });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

function summary(form, message, items) {
  const box = document.createElement("div");
  box.className = "summary";
  box.id = (form.id || "formq") + "-summary";
  box.setAttribute("role", "alert");
  box.tabIndex = -1;
  box.dataset.formqError = box.dataset.formqSummary = "";
  const p = box.appendChild(document.createElement("p"));
  p.appendChild(document.createElement("strong")).textContent = message;
  if (items.length) {
    const ul = box.appendChild(document.createElement("ul"));
    for (const [href, text] of items) {
      const a = ul.appendChild(document.createElement("li")).appendChild(document.createElement(href ? "a" : "span"));
      if (href) a.href = href;
      a.textContent = text;
    }
  }
  form.prepend(box);
  box.focus();
  return box;
}

/** Shows field errors beside their fields and in a summary, and moves focus to it. */
export function showErrors(form, errors, message = text(form, "summary")) {
  clear(form);
  const names = Object.keys(errors);
  const order = [...form.elements].map((e) => e.name);
  names.sort((a, b) => ((order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9)));
  const items = [];
  for (const name of names) {
    const el = field(form, name);
    const msgs = errors[name];
    let href = "";
    if (el && el.type != "hidden") {
      if (!el.id) el.id = "formq-" + name;
      href = "#" + el.id;
      const p = document.createElement("p");
      p.className = "error";
      p.id = el.id + "-error";
      p.dataset.formqError = "";
      p.textContent = msgs.join(" ");
      const after = (el.type == "checkbox" && el.closest("label")) || el;
      after.after(p);
      el.setAttribute("aria-invalid", "true");
      describe(el, p.id, true);
    }
    for (const m of msgs) items.push([href, m]);
  }
  summary(form, message, items);
}

/** Shows a message for the whole form (network trouble, refusals). */
function notice(form, message) {
  clear(form);
  summary(form, message, []);
}

/** Puts the references of kept files in the form, with a note beside each file input. */
export function keep(form, kept) {
  for (const name in kept || {}) {
    const input = field(form, name);
    form.querySelectorAll(`[data-formq-kept="${name}"],[data-formq-kept-note="${name}"]`).forEach((e) => e.remove());
    if (!input) continue;
    // The file is kept by formq: clear the input so it is not sent again.
    if (input.type == "file") input.value = "";
    const note = document.createElement("p");
    note.className = "kept";
    note.dataset.formqKeptNote = name;
    note.textContent = text(form, "kept", { files: kept[name].map((k) => `${k.filename} (${human(k.size)})`).join(", ") });
    input.after(note);
    for (const k of kept[name]) {
      const h = document.createElement("input");
      h.type = "hidden";
      h.name = name;
      h.value = k.ref;
      h.dataset.formqKept = name;
      note.after(h);
    }
  }
}

// Progress bars show only while files upload.
const bars = (form, show) => form.querySelectorAll("progress[data-formq-progress]").forEach((p) => (p.hidden = !show));

function pending(form, on) {
  if (!on) bars(form, false);
  on ? form.setAttribute("data-pending", "") : form.removeAttribute("data-pending");
  form.setAttribute("aria-busy", on);
  form.querySelectorAll("button:not([type]),button[type=submit],input[type=submit]").forEach((b) => {
    b.disabled = on;
    const label = b.dataset.pendingLabel;
    if (label && b.tagName == "BUTTON") {
      if (on) (b.dataset.formqLabel = b.textContent), (b.textContent = label);
      else if (b.dataset.formqLabel != null) b.textContent = b.dataset.formqLabel;
    }
  });
}

function post(url, fd, files, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", url);
    x.withCredentials = true;
    x.setRequestHeader("Accept", "application/json");
    // An upload listener makes a cross-origin request preflighted: only
    // forms that send files listen.
    if (files.length) x.upload.onprogress = onProgress;
    x.onload = () => resolve(x);
    x.onerror = x.ontimeout = () => reject(new Error("network"));
    x.send(fd);
  });
}

/** How far each file got, from the bytes of the body sent so far. */
function progress(e, files) {
  const size = files.reduce((n, f) => n + f.size, 0) || 1;
  let at = (e.loaded / (e.total || 1)) * size;
  return files.map((f) => {
    const loaded = Math.max(0, Math.min(f.size, at));
    at -= f.size;
    return { field: f.field, name: f.name, size: f.size, loaded: Math.round(loaded) };
  });
}

/** Whether a submission's status is final: nothing more happens to it. */
const final = (status) => status == "completed" || status == "failed" || status == "rejected";

/** Text for a submission's status, in el's words: "Processing (step 1 of 2: thumbnail)". */
export function describeStatus(s, el = document.documentElement) {
  let t = EN[s.status] ? text(el, s.status) : s.status;
  const steps = s.steps || [];
  const i = steps.findIndex((x) => x.state == "running" || x.state == "pending" || x.state == "retrying");
  if (s.status == "processing" && i >= 0) t += ` (${text(el, "step", { i: i + 1, n: steps.length, name: steps[i].name || steps[i].type })})`;
  if (s.status == "failed" && s.error) t += ": " + s.error;
  if (s.status == "rejected" && s.message) t += ": " + s.message;
  return t;
}

/** Follows a submission's status stream; onStatus gets each status until it is final. */
export function watch(statusUrl, onStatus) {
  const u = new URL(statusUrl, location.href);
  u.pathname = u.pathname.replace(/\/?$/, "/events"); // keeps ?t=, the capability
  const es = new EventSource(u);
  es.onmessage = (e) => {
    const s = JSON.parse(e.data);
    onStatus(s);
    if (final(s.status)) es.close();
  };
  return { close: () => es.close() };
}

function showStatus(el, url, onStatus) {
  return watch(url, (s) => {
    el.textContent = describeStatus(s, el);
    el.dataset.status = s.status;
    fire(el, "status", s);
    if (onStatus) onStatus(s);
  });
}

/**
 * Waits for a submission to be final: resolves with its last status, or
 * with null when the stream cannot be followed for ms milliseconds.
 */
function outcome(statusUrl, ms) {
  return new Promise((resolve) => {
    let w = null;
    const timer = setTimeout(() => (w && w.close(), resolve(null)), ms);
    w = watch(statusUrl, (s) => {
      if (final(s.status)) clearTimeout(timer), resolve(s);
    });
  });
}

/**
 * Shows the app's refusal of a submission (its webhook answered 422):
 * errors beside the fields, the form-level message, the kept files ready
 * to be sent again with the next submit.
 */
function refused(form, s) {
  const errors = s.errors || {};
  const msg = where(form, "data-formq-message");
  if (msg) msg.textContent = "";
  showErrors(form, errors, s.message || SUMMARY);
  keep(form, s.kept);
  fire(form, "invalid", { errors, kept: s.kept, message: s.message, source: "app" });
}

function where(form, attr, tag) {
  let el = form.querySelector(`[${attr}]`) || document.querySelector(`[${attr}="${form.id}"]`);
  if (!el && tag) {
    el = document.createElement(tag);
    el.setAttribute(attr, "");
    el.setAttribute("role", "status");
    form.after(el);
  }
  return el;
}

// Resumable uploads (tus 1.0) are in formq-tus.js, beside this module,
// loaded only for actions with resumable fields.
const tus = () => import(new URL("formq-tus.js", import.meta.url).href);

/** The fields captcha widgets fill in (Turnstile, hCaptcha, reCAPTCHA, ALTCHA). */
const CAPTCHA_FIELDS = ["cf-turnstile-response", "h-captcha-response", "g-recaptcha-response", "altcha"];

/**
 * Moves the captcha's answer to the front of fd, wherever the widget sits
 * in the page: formq refuses a file that comes before the answer, since
 * nothing may be stored for a post without one. Returns {name, value} of
 * the answer (the resumable uploads spend it and put their grant in its
 * place), or null.
 */
function captchaFirst(fd) {
  const name = CAPTCHA_FIELDS.find((n) => fd.has(n));
  if (!name) return null;
  const all = [...fd];
  for (const [k] of all) fd.delete(k);
  for (const [k, v] of all) if (k == name) fd.append(k, v);
  for (const [k, v] of all) if (k != name) fd.append(k, v);
  return { name, value: String(fd.get(name)) };
}

/**
 * Sends one file of a resumable upload field over tus, resuming an upload
 * of the same file begun earlier (in this page or before a reload).
 * Resolves with the upload reference to send as the field's value.
 */
export const resumableUpload = (form, field, file, options) => tus().then((m) => m.resumableUpload(form, field, file, options));

/** A message with "Try again in n seconds." for a 429 or 503 that says when. */
const later = (form, message, status, n) => ((status == 429 || status == 503) && n ? message + " " + text(form, n == 1 ? "retryOne" : "retry", { n }) : message);

/** Shows why a resumable upload stopped; the answer of submit(). */
function tusFailed(form, err) {
  if (err.status == 422 && err.body && err.body.errors) {
    showErrors(form, err.body.errors, err.body.error.message);
    fire(form, "invalid", { errors: err.body.errors, source: "server" });
    return { ok: false, status: 422, body: err.body };
  }
  const message = later(form, err.refused ? err.message : text(form, "upload"), err.status, err.retryAfter);
  notice(form, message);
  fire(form, "error", { status: err.status || 0, code: (err.body && err.body.error && err.body.error.code) || "network", message });
  return { ok: false, status: err.status || 0, body: err.body || null };
}

// The outbox keeps submissions made offline; loaded ahead (the network may be gone when needed).
let box;
const outbox = () => (box ||= import(new URL("formq-offline.js", import.meta.url).href));
const offlineOK = (form) => form.dataset.formqOffline != "off" && typeof indexedDB != "undefined";

/** Keeps a submission in the outbox; false when it cannot. */
async function keepOffline(form, key, fd) {
  try {
    const o = await outbox();
    await o.put({ key, url: form.action, form: form.id, entries: [...fd], saved: Date.now() });
    o.sync();
    return true;
  } catch (_) {
    return false;
  }
}

/** Shows that a submission waits, and sends it when back online. */
function waiting(form, key) {
  const s = st(form);
  notice(form, text(form, "saved"));
  form.setAttribute("data-formq-waiting", "");
  fire(form, "waiting", { key });
  if (!s.listen) {
    s.listen = 1;
    addEventListener("online", () => resume(form));
    outbox().then((o) => o.answered(() => resume(form)), () => {});
  }
  return { ok: false, status: 0, queued: true, key };
}

/** A record's values by name (no files, no reserved fields). */
const valuesOf = (entries) => entries.reduce((o, [k, v]) => (typeof v == "string" && k[0] != "_" && (o[k] = [].concat(o[k] ?? [], v)), o), {});

/** Shows this form's waiting submissions; sends them when online. */
async function resume(form) {
  const o = await outbox();
  await o.drain(
    (rec) => rec.url == form.action && rec.form == form.id,
    (rec) => {
      fill(form, valuesOf(rec.entries));
      return navigator.onLine === false && !rec.answer ? waiting(form, rec.key) : submit(form, { queued: rec, retries: 0 });
    }
  );
}

/**
 * Submits a form to formq: checks it against the action's declaration,
 * sends it with its idempotency key (retried on network errors), shows
 * errors or follows the answer. Resolves with {ok, status, body}; when
 * formq cannot be reached, the submission is kept to send later with the
 * same key ({queued: true, key}).
 */
export async function submit(form, options = {}) {
  const s = st(form);
  if (s.busy) return s.busy;
  // An outbox record, sent again (or answered by the service worker).
  const rec = options.queued;
  const run = async () => {
    await language(form);
    const decl = await schema(form);
    let fd = new FormData(form);
    let answer = null;
    if (rec) {
      fd = (await outbox()).formData(rec.entries);
      s.key = rec.key;
    } else {
      if (options.submitter && options.submitter.name) fd.append(options.submitter.name, options.submitter.value);
      if (decl && decl.origin && !decl.origin.allowed) {
        notice(form, decl.origin.message);
        fire(form, "error", { status: 403, code: "forbidden_origin", message: decl.origin.message });
        return { ok: false, status: 403, body: null };
      }
      const errors = decl ? check(form, decl, fd) : {};
      if (Object.keys(errors).length) {
        showErrors(form, errors);
        fire(form, "invalid", { errors, source: "client" });
        return { ok: false, status: 0, errors };
      }
      fd.set("_idempotency", s.key);
      const r = !fd.get("_rendered") && (await (s.stamp ||= stamp(form)));
      if (r) fd.set("_rendered", r);
      if (!fire(form, "submit", { formData: fd }, true)) return { ok: false, status: 0 };
      answer = captchaFirst(fd);
    }
    const emit = (d) => {
      bars(form, true);
      form.querySelectorAll("progress[data-formq-progress]").forEach((p) => {
        const one = d.files.filter((f) => f.field == p.dataset.formqProgress);
        p.max = one.length ? one.reduce((n, f) => n + f.size, 0) : d.total;
        p.value = one.length ? one.reduce((n, f) => n + f.loaded, 0) : d.loaded;
      });
      fire(form, "progress", d);
      if (options.onProgress) options.onProgress(d);
    };
    let resumed = () => {};
    if (!rec && ((decl && decl.uploads) || []).some((u) => u.resumable)) {
      try {
        resumed = await (await tus()).sendResumable(form, decl, fd, emit, answer);
      } catch (err) {
        return tusFailed(form, err);
      }
    }
    const files = [];
    for (const [k, v] of fd) if (v instanceof File && v.name) files.push({ field: k, name: v.name, size: v.size });
    const onProgress = (e) => emit({ loaded: e.loaded, total: e.total, files: progress(e, files) });
    const retries = options.retries ?? 3;
    let x = rec && rec.answer;
    for (let i = 0; !x; i++) {
      try {
        x = await post(form.action, fd, files, onProgress);
      } catch (err) {
        const offline = navigator.onLine === false;
        if (i >= retries || offline) {
          if (rec || (offlineOK(form) && (await keepOffline(form, s.key, fd)))) return waiting(form, s.key);
          const message = text(form, offline ? "offline" : "network");
          notice(form, message);
          fire(form, "error", { status: 0, code: offline ? "offline" : "network", message });
          return { ok: false, status: 0, error: message };
        }
        await sleep(500 * 2 ** i);
      }
    }
    let body = null;
    try {
      body = JSON.parse(x.responseText);
    } catch (_) {}
    const status = x.status;
    // formq answered: the record is done with.
    if (rec) await (await outbox()).drop(rec.key);
    form.removeAttribute("data-formq-waiting");
    // An answer about a submission spends the key: the next submit is a new one.
    if (body && body.submission) s.key = newKey();
    if (body && body.ok) {
      resumed(); // the references are used
      s.stamp = stamp(form);
      clear(form);
      form.querySelectorAll("[data-formq-kept],[data-formq-kept-note]").forEach((e) => e.remove());
      let sub = body.submission;
      const statusEl = form.hasAttribute("data-formq-status") && where(form, "data-formq-status-text", "p");
      const inPlace = form.dataset.formqSuccess == "message" || statusEl || options.redirect === false;
      if (!inPlace && !final(sub.status) && decl && decl.wait > 0) {
        // The action waits for its steps' answer and the wait ran out:
        // stay on the page until the outcome, which may be a refusal.
        const end = await outcome(sub.statusUrl, options.follow ?? 60e3);
        if (end && end.status == "rejected") {
          refused(form, end);
          return { ok: false, status, body, submission: end };
        }
        if (end) body = { ...body, message: end.message || body.message, redirect: end.redirect || body.redirect, submission: (sub = end) };
      }
      fire(form, "success", { ...body, status: sub.status, data: sub.data });
      if (inPlace) {
        const msg = where(form, "data-formq-message", "p");
        if (msg) msg.textContent = body.message || text(form, "thanks");
        // The values stay until the submission is final: a refusal of the
        // app's shows beside them, ready to be fixed and sent again.
        let open = !final(sub.status);
        const onStatus = (st) => {
          if (!open || !final(st.status)) return;
          open = false;
          if (st.status == "rejected") return refused(form, st);
          if (msg && st.message) msg.textContent = st.message;
          form.reset();
        };
        if (statusEl) showStatus(statusEl, sub.statusUrl, onStatus);
        else if (open) watch(sub.statusUrl, onStatus);
        if (!open) form.reset();
      } else if (body.redirect) location.assign(body.redirect);
      return { ok: true, status, body };
    }
    if (status == 422 && body && (body.errors || body.submission)) {
      // A validation failure, or the app's refusal within the action's wait.
      const errors = body.errors || {};
      const message = body.error && body.error.message;
      showErrors(form, errors, message);
      keep(form, body.kept);
      fire(form, "invalid", { errors, kept: body.kept, message, source: body.submission ? "app" : "server" });
      return { ok: false, status, body };
    }
    const message = later(form, (body && body.error && body.error.message) || text(form, "answered", { status }), status, x.getResponseHeader ? x.getResponseHeader("Retry-After") : x.retryAfter);
    notice(form, message);
    fire(form, "error", { status, code: body && body.error && body.error.code, message });
    return { ok: false, status, body };
  };
  pending(form, true);
  s.busy = run().finally(() => {
    s.busy = null;
    pending(form, false);
  });
  return s.busy;
}

/** Puts values back in a form's fields (never files or passwords). */
function fill(form, values) {
  for (const name in values || {}) {
    const v = values[name];
    const list = [].concat(v).map(String);
    const el = form.elements.namedItem(name);
    const els = !el ? [] : el.tagName ? [el] : [...el];
    for (const e of els) {
      if (e.type == "file" || e.type == "password") continue;
      if (e.type == "checkbox" || e.type == "radio") e.checked = list.includes(e.value) || (e.type == "checkbox" && list.includes("true") && els.length == 1);
      else if (e.multiple && e.options) for (const o of e.options) o.selected = list.includes(o.value);
      else e.value = list[0] ?? "";
    }
  }
}

// States read on this page, by URL: a formq_state token opens once, so
// forms of one action on the page share the one read.
const states = new Map();

/** Reads a formq_state once per page; resolves to its JSON or null. */
function readState(url) {
  if (!states.has(url))
    states.set(url, (async () => {
      try {
        const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "omit" });
        return r.ok ? await r.json() : null;
      } catch {
        return null;
      }
    })());
  return states.get(url);
}

/**
 * Shows again, on the page an error redirect came back to
 * (?formq_state=...), the errors, values and kept files of the failed
 * submission, and drops formq_state from the address. Resolves to the
 * state, or null when the page has none for this form's action.
 */
export async function restore(form) {
  const token = new URLSearchParams(location.search).get("formq_state");
  const url = token && schemaURL(form);
  if (!url) return null;
  const body = await readState(url.replace(/\/schema$/, "/state/" + encodeURIComponent(token)));
  if (!body || !body.errors) return null;
  await language(form);
  const errors = { ...body.errors };
  for (const name of body.omitted || []) errors[name] = (errors[name] || []).concat(text(form, "omitted"));
  fill(form, body.values);
  const message = body.error && body.error.message;
  showErrors(form, errors, message);
  keep(form, body.kept);
  const u = new URL(location.href);
  u.searchParams.delete("formq_state");
  history.replaceState(history.state, "", u.href);
  fire(form, "invalid", { errors, kept: body.kept, message, omitted: body.omitted || [], source: "state" });
  return body;
}

/** Enhances one form: submits go through submit(); the schema is fetched ahead. */
export function enhance(form) {
  const s = st(form);
  if (s.on) return;
  s.on = true;
  form.noValidate = true;
  s.stamp = stamp(form);
  bars(form, false);
  language(form);
  restore(form);
  if (offlineOK(form)) outbox().then((o) => o.marked() && resume(form), () => {});
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit(form, { submitter: e.submitter });
  });
  form.addEventListener("change", (e) => {
    if (e.target.type == "file") form.querySelectorAll(`[data-formq-kept="${e.target.name}"],[data-formq-kept-note="${e.target.name}"]`).forEach((k) => k.remove());
  });
}

function init() {
  document.querySelectorAll("form[data-formq]").forEach(enhance);
  document.querySelectorAll("[data-formq-status]:not(form)").forEach((el) => {
    const url = el.getAttribute("data-formq-status");
    // formq's done page asks to be shown again when the submission ends
    // so (a refusal is then the filled form with the app's errors).
    const again = (el.dataset.formqReload || "").split(" ");
    let open = false;
    if (url) Promise.resolve(language(el)).then(() => showStatus(el, url, (s) => (final(s.status) ? open && again.includes(s.status) && location.reload() : (open = true))));
  });
}

if (typeof document != "undefined") document.readyState == "loading" ? document.addEventListener("DOMContentLoaded", init) : init();
