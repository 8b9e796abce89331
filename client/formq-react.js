// formq-react.js: useFormq, React 19's useActionState for forms that post
// to formq. One ES module; it imports "react", so your bundler puts it in
// your app beside your own React (copy it from formq's /formq-react.js).
//
//   const [state, formAction, isPending] = useFormq("https://forms.example.com/actions/create-user", { message: "" });
//   <form action={formAction}> ... {state.errors.email} ... {state.message}
//
// The hook posts the form to the action as JSON-speaking formq.js does,
// follows an accepted submission's status until its steps are done, and
// returns what happened as state: formq's field errors and the app's
// (a webhook step answering 422) beside the values that were sent, the
// action's message with its steps' data filled in, the data itself.

import { useActionState, useEffect, useRef } from "react";

const SUMMARY = "Please fix the errors below.";
const schemas = new Map();

const newKey = () =>
  crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(18)), (b) => b.toString(16)).join("");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const final = (status) => status == "completed" || status == "failed" || status == "rejected";

/** A state with every key, so a form can read state.errors.email without checks. */
const result = (fields) => ({ ok: false, status: null, message: "", errors: {}, values: {}, data: {}, kept: {}, redirect: "", submission: null, ...fields });

/** The action's public declaration, loaded once per page; null when it cannot be. */
function schema(actionUrl) {
  const url = actionUrl.replace(/\/?$/, "/schema");
  if (!schemas.has(url)) {
    schemas.set(
      url,
      fetch(url, { headers: { Accept: "application/json" }, credentials: "omit" })
        .then((r) => (r.ok ? r.json() : null))
        .catch(() => null)
    );
  }
  return schemas.get(url);
}

/** A sealed render time for an action with min_fill_time; null for others. */
const stamp = (actionUrl) =>
  schema(actionUrl).then(
    (d) =>
      d &&
      d.minFillTime &&
      fetch(actionUrl.replace(/\/?$/, "/stamp"), { cache: "no-store" })
        .then((r) => r.json())
        .then((b) => b.rendered)
        .catch(() => null)
  );

/**
 * The text values a form sent, to show again after a later refusal (the
 * answer to a refusal within the action's wait carries its own): declared
 * fields only when the declaration is known, never sensitive ones.
 */
function sent(fd, decl, kept) {
  const fields = decl && new Map(decl.fields.map((f) => [f.name, f]));
  const out = {};
  for (const [k, v] of fd) {
    if (typeof v != "string" || k.startsWith("_") || k in kept) continue;
    if (fields && (!fields.has(k) || fields.get(k).sensitive)) continue;
    out[k] = k in out ? [].concat(out[k], v) : v;
  }
  return out;
}

/** Puts the references of files kept from the last refusal in the form data, unless a new file was chosen. */
function withKept(fd, kept) {
  for (const name in kept) {
    if (fd.getAll(name).some((v) => typeof v != "string" && v.name)) continue; // a new file replaces it
    fd.delete(name);
    for (const k of kept[name]) fd.append(name, k.ref);
  }
}

/** Posts the form, retrying network errors with backoff (same idempotency key). */
async function post(url, fd, retries) {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(url, { method: "POST", body: fd, headers: { Accept: "application/json" }, credentials: "include" });
      let body = null;
      try {
        body = await r.json();
      } catch (_) {}
      return { status: r.status, body, retryAfter: r.headers.get("Retry-After") };
    } catch (err) {
      if (i >= retries || navigator.onLine === false) throw err;
      await sleep(500 * 2 ** i);
    }
  }
}

/** Follows a submission's status stream until it is final; null after ms without. */
function follow(statusUrl, ms) {
  return new Promise((resolve) => {
    const u = new URL(statusUrl, location.href);
    u.pathname = u.pathname.replace(/\/?$/, "/events"); // keeps ?t=, the capability
    const es = new EventSource(u);
    const end = (s) => (clearTimeout(timer), es.close(), resolve(s));
    const timer = setTimeout(() => end(null), ms);
    es.onmessage = (e) => {
      const s = JSON.parse(e.data);
      if (final(s.status)) end(s);
    };
  });
}

/**
 * useFormq is React 19's useActionState for an action of formq's: it
 * returns [state, formAction, isPending]. Pass formAction to a form's
 * action (or call it with FormData); state holds ok, errors, values,
 * message, data and status of the last submit, and the kept files the
 * next one sends again unless the person chooses new ones.
 *
 * options.follow: how long (ms) to follow an accepted submission's status
 * until its steps answer (default 60000; 0: not at all). options.retries:
 * network retries (default 3).
 */
export function useFormq(actionUrl, initialState = {}, options = {}) {
  const key = useRef(null); // the idempotency key of the submit being sent, until formq answers about it
  const rendered = useRef(null);
  useEffect(() => {
    let live = true;
    stamp(actionUrl).then((r) => live && (rendered.current = r));
    return () => void (live = false);
  }, [actionUrl]);

  return useActionState(async (prev, payload) => {
    const fd = payload instanceof FormData ? payload : new FormData();
    if (!(payload instanceof FormData)) for (const k in payload || {}) fd.append(k, payload[k]);
    const kept = (prev && prev.kept) || {};
    const decl = await schema(actionUrl);
    const values = sent(fd, decl, kept);
    withKept(fd, kept);
    key.current ||= newKey();
    fd.set("_idempotency", key.current);
    if (rendered.current && !fd.get("_rendered")) fd.set("_rendered", rendered.current);

    let ans;
    try {
      ans = await post(actionUrl, fd, options.retries ?? 3);
    } catch (_) {
      const message =
        navigator.onLine === false
          ? "You are offline. Your answers are still here: submit again once you are back online."
          : "The form could not reach the server. Your answers are still here: try again.";
      return result({ message, values, kept });
    }
    const { status, body } = ans;
    if (body && body.submission) key.current = null; // the key is spent: the next submit is a new one
    if (body && body.ok) {
      let sub = body.submission;
      const ms = options.follow ?? 60e3;
      if (!final(sub.status) && ms > 0) sub = (await follow(sub.statusUrl, ms)) || sub;
      if (sub.status == "rejected") {
        return result({ status: "rejected", errors: sub.errors || {}, message: sub.message || SUMMARY, values, kept: sub.kept || {}, submission: sub });
      }
      return result({
        ok: sub.status != "failed",
        status: sub.status,
        message: sub.status == "failed" ? sub.error || "Your submission was received, but its processing failed." : sub.message || body.message || "",
        data: sub.data || {},
        redirect: sub.redirect || body.redirect || "",
        submission: sub,
      });
    }
    if (status == 422 && body && (body.errors || body.submission)) {
      // formq's validation, or the app's refusal within the action's wait.
      return result({
        status: body.submission ? body.submission.status : null,
        errors: body.errors || {},
        message: (body.error && body.error.message) || SUMMARY,
        values: body.values || {},
        kept: body.kept || {},
        submission: body.submission || null,
      });
    }
    let message = (body && body.error && body.error.message) || `The server answered ${status}.`;
    if ((status == 429 || status == 503) && ans.retryAfter) message += ` Try again in ${ans.retryAfter} second${ans.retryAfter == 1 ? "" : "s"}.`;
    return result({ message, values, kept });
  }, initialState);
}
