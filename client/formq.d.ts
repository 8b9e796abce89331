// Type declarations of formq.js (served by formq at /formq.js).

/** The public declaration of an action: GET /actions/{name}/schema. */
export interface Schema {
  name: string;
  title: string;
  url: string;
  maxBody: number;
  honeypot?: string;
  /** The action's min_fill_time in milliseconds; enhanced forms then post a stamp as _rendered. */
  minFillTime?: number;
  fields: SchemaField[];
  uploads: SchemaUpload[];
  theme?: { accent?: string; logo?: string; stylesheet?: string };
  /** The action's wait in milliseconds: its answers wait for its steps (completed or rejected). */
  wait?: number;
  /** Whether the page asking (its Origin) may post to the action. */
  origin?: { allowed: boolean; message?: string };
}

export interface SchemaField {
  name: string;
  type: "text" | "textarea" | "email" | "url" | "number" | "integer" | "boolean" | "date" | "select" | "hidden" | "password";
  label: string;
  required: boolean;
  minLength?: number;
  maxLength?: number;
  /** Anchored RE2 expression; the common subset reads the same as a JavaScript RegExp with the u flag. */
  pattern?: string;
  min?: number;
  max?: number;
  options?: { value: string; label: string }[];
  multiple?: boolean;
  sensitive?: boolean;
  placeholder?: string;
  help?: string;
  autocomplete?: string;
  default?: string;
  /** Messages by rule (required, min_length, max_length, pattern, options, min, max, format, and each check's rule). */
  messages: Record<string, string>;
  /** The rules without a key of their own (not_in, equals_field), with the hint a browser checks them by. */
  checks?: SchemaCheck[];
}

/** A rule of a field with one hint: a value fails when it matches refuse, or differs from field sameAs's value. */
export interface SchemaCheck {
  rule: string;
  setting: unknown;
  /** A JavaScript RegExp source, for the u flag (and i with ignoreCase). */
  refuse?: string;
  ignoreCase?: boolean;
  sameAs?: string;
}

export interface SchemaUpload {
  name: string;
  label: string;
  required: boolean;
  maxSize: number;
  maxFiles: number;
  types?: string[];
  accept?: string;
  /** For people: "PNG, JPEG or WebP, up to 5 MB". */
  limits: string;
  /** Messages by rule (required, max_size, max_files, types with {type} to fill in). */
  messages: Record<string, string>;
  /** The field takes resumable uploads (tus): submit() sends its files to /uploads/tus/ first. */
  resumable?: boolean;
}

/** Field errors by field name, as formq's 422 answers them. */
export type FieldErrors = Record<string, string[]>;

/** A file kept from a failed submit: send ref as the field's value. */
export interface KeptFile {
  ref: string;
  filename: string;
  size: number;
  contentType: string;
}

export interface FileProgress {
  field: string;
  name: string;
  size: number;
  loaded: number;
}

/** detail of formq:progress. */
export interface Progress {
  loaded: number;
  total: number;
  files: FileProgress[];
}

/** One attempt to deliver a webhook step (the admin's view of a status only). */
export interface DeliveryAttempt {
  at: string;
  url: string;
  webhookId: string;
  /** The answer's HTTP status; 0 when none came. */
  status: number;
  latencyMs: number;
  error?: string;
}

/** One follow-up step of a submission. */
export interface Step {
  type: string;
  /** The step's name in the actions file: its data is steps.NAME in the status's data. */
  name?: string;
  /** retrying: failed, waits for its next attempt; skipped: chose not to act; rejected: the app refused the submission. */
  state: "pending" | "running" | "retrying" | "completed" | "failed" | "skipped" | "rejected";
  attempts: number;
  lastError?: string;
  /** Why the step was skipped. */
  note?: string;
  deliveries?: DeliveryAttempt[];
}

/** A stored file of a submission: the submitter sees its field, size and content type; the admin token also its key and sha256. */
export interface SubmissionFile {
  field: string;
  key?: string;
  size: number;
  contentType: string;
  sha256?: string;
  filename?: string;
}

/** A submission's status (GET /submissions/{id} under "submission"); detail of formq:status. */
export interface Status {
  id: string;
  action: string;
  /**
   * rejected: the app refused it (its webhook answered 422); final like completed and failed.
   * spam: held in the Spam folder; only the admin token's reads show it, a submitter never sees it.
   */
  status: "queued" | "processing" | "completed" | "failed" | "rejected" | "spam";
  statusUrl: string;
  files?: SubmissionFile[];
  steps?: Step[];
  /** Why it failed, for people. */
  error?: string;
  /** Completed: what named steps answered, by step name then key ({steps.NAME.KEY}). */
  data?: Record<string, Record<string, string>>;
  /** Completed: the action's message with the data filled in; rejected: the app's form-level message. */
  message?: string;
  /** Completed: the action's redirect with the data filled in. */
  redirect?: string;
  /** Rejected: the app's errors for declared fields. */
  errors?: FieldErrors;
  /** Rejected: the files of the submission, kept to be sent again by reference. */
  kept?: Record<string, KeptFile[]>;
  /** The revalidation event's stream id, once published. */
  event?: string;
  updatedAt?: string;
  version: number;
}

/** detail of formq:success: the JSON answer, with the submission's status and data. */
export interface Success {
  ok: true;
  message?: string;
  redirect?: string;
  submission: Status;
  /** The submission's status: completed when the action waited for its steps and they answered. */
  status: Status["status"];
  /** Completed: what named steps answered (see Status.data). */
  data?: Record<string, Record<string, string>>;
}

export interface SubmitOptions {
  /** The button that submitted the form, sent as a field when it has a name. */
  submitter?: HTMLElement | null;
  /** Retries after a network error, with backoff (default 3). */
  retries?: number;
  /** false: stay on the page instead of following the answer's redirect. */
  redirect?: boolean;
  onProgress?: (p: Progress) => void;
  /**
   * For an action with wait whose answer came before its steps finished
   * (202): how long to stay on the page following the status before the
   * redirect, in milliseconds (default 60000).
   */
  follow?: number;
}

export interface SubmitResult {
  ok: boolean;
  /** HTTP status; 0 when refused by the checks in the browser or not sent. */
  status: number;
  /** The JSON answer, when there was one. */
  body?: any;
  /** Field errors found in the browser before sending. */
  errors?: FieldErrors;
  /** The final status that followed a 202, when submit() waited for it (a refusal). */
  submission?: Status;
  error?: string;
  /** formq could not be reached: the submission is kept in the outbox and sent with this key when the connection returns. */
  queued?: boolean;
  /** The idempotency key the kept submission will be sent with. */
  key?: string;
}

export function submit(form: HTMLFormElement, options?: SubmitOptions): Promise<SubmitResult>;
export function enhance(form: HTMLFormElement): void;
export function schema(form: HTMLFormElement): Promise<Schema | null>;
export function check(form: HTMLFormElement, schema: Schema, data?: FormData): FieldErrors;
export function showErrors(form: HTMLFormElement, errors: FieldErrors, message?: string): void;
export function clear(form: HTMLFormElement): void;
export function keep(form: HTMLFormElement, kept: Record<string, KeptFile[]>): void;
/**
 * Shows again the errors, values and kept files an error redirect brought
 * back (?formq_state=...), and drops formq_state from the address. enhance()
 * calls it. Fields named in `omitted` had values too long to carry back.
 */
export function restore(form: HTMLFormElement): Promise<RestoredState | null>;

/** The failed submission an error redirect brought back (GET /actions/{name}/state/{token}). */
export interface RestoredState {
  ok: false;
  error: { code: string; message: string };
  errors: FieldErrors;
  values?: Record<string, string | string[]>;
  kept?: Record<string, KeptFile[]>;
  /** Fields whose values were too long to carry back; not in values. */
  omitted?: string[];
}
export function watch(statusUrl: string, onStatus: (s: Status) => void): { close(): void };
/** Text for a submission's status in the words of el's language (default: the page's). */
export function describeStatus(s: Status, el?: Element): string;

/**
 * The keys of formq.js's words: what it shows, with {name}s it fills in
 * (retry: {n}; answered: {status}; kept: {files}; step: {i}, {n}, {name}).
 */
export type WordKey =
  | "summary" | "network" | "offline" | "saved" | "upload" | "retry" | "retryOne" | "answered" | "thanks"
  | "kept" | "omitted" | "queued" | "processing" | "completed" | "failed" | "rejected" | "step";

/**
 * Replaces formq.js's words on this page: for every language, or, with
 * lang (a primary subtag: "fr"), for forms inside an element with that
 * lang. A form's (or an ancestor's) data-formq-text-{key} attribute comes
 * first (data-formq-text-retry-one for retryOne).
 */
export function strings(words: Partial<Record<WordKey, string>>, lang?: string): void;
/** The word for key as formq.js shows it in el, with {name}s filled from vars. */
export function text(el: Element, key: WordKey, vars?: Record<string, string | number>): string;
/**
 * Sends one file of a resumable upload field over tus 1.0, resuming an
 * upload of the same file (name, size, mtime) begun earlier, also before a
 * page reload; resolves with the upload reference to send as the field's
 * value. submit() does this for every resumable field; a refusal rejects
 * with an Error carrying status and the contract's body.
 */
export function resumableUpload(
  form: HTMLFormElement,
  field: string,
  file: File,
  options?: { onProgress?: (loaded: number) => void; retries?: number }
): Promise<string>;

declare global {
  interface HTMLElementEventMap {
    "formq:submit": CustomEvent<{ formData: FormData }>;
    "formq:progress": CustomEvent<Progress>;
    "formq:success": CustomEvent<Success>;
    /** source: client (checks in the browser), server (formq's validation), app (the app refused it, at once or later). */
    "formq:invalid": CustomEvent<{ errors: FieldErrors; kept?: Record<string, KeptFile[]>; message?: string; source: "client" | "server" | "app" }>;
    "formq:error": CustomEvent<{ status: number; code?: string; message: string }>;
    "formq:status": CustomEvent<Status>;
    /** formq could not be reached: the submission waits in the outbox (IndexedDB) to be sent with this key. */
    "formq:waiting": CustomEvent<{ key: string }>;
  }
}
