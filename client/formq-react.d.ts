// Type declarations of formq-react.js (served by formq at /formq-react.js).

/** Field errors by field name, as formq's 422 answers them. */
export type FieldErrors = Record<string, string[]>;

/** A file kept from a refused submit: sent again by reference unless a new file is chosen. */
export interface KeptFile {
  ref: string;
  filename: string;
  size: number;
  contentType: string;
}

/** The submission a submit made, as its status reports it (see formq.d.ts's Status). */
export interface Submission {
  id: string;
  action: string;
  status: "queued" | "processing" | "completed" | "failed" | "rejected" | "spam";
  statusUrl: string;
  data?: Record<string, Record<string, string>>;
  message?: string;
  redirect?: string;
  errors?: FieldErrors;
  kept?: Record<string, KeptFile[]>;
  error?: string;
  [key: string]: unknown;
}

/** What useFormq's state holds after a submit. */
export interface FormqState {
  /** The submission was accepted, and completed unless status says it is still queued or processing. */
  ok: boolean;
  /**
   * The submission's status: completed (its steps answered), rejected (the
   * app refused it), failed, or queued/processing when it was not followed
   * to the end; null when nothing was stored (invalid, refused by formq,
   * not sent).
   */
  status: Submission["status"] | null;
  /** The action's message (its {steps.NAME.KEY} filled in), formq's or the app's form-level message, or why it was not sent. */
  message: string;
  /** Errors by field name: formq's validation or the app's refusal. */
  errors: FieldErrors;
  /** The values sent, to show again after an error (never files, never sensitive fields). */
  values: Record<string, string | string[]>;
  /** What the action's named steps answered, by step name then key. */
  data: Record<string, Record<string, string>>;
  /** Files of a refused submit, kept: the next submit sends them again. */
  kept: Record<string, KeptFile[]>;
  /** The action's redirect with the data filled in (the hook does not follow it). */
  redirect: string;
  submission: Submission | null;
}

export interface FormqOptions {
  /** How long to follow an accepted submission's status until its steps answer, in ms (default 60000; 0: not at all). */
  follow?: number;
  /** Retries after a network error, with backoff and the same idempotency key (default 3). */
  retries?: number;
}

/**
 * React 19's useActionState for an action of formq's: [state, formAction,
 * isPending]. Pass formAction to <form action>; state is initialState
 * until the first submit, a FormqState after it.
 */
export function useFormq<S extends object = {}>(
  actionUrl: string,
  initialState?: S & Partial<FormqState>,
  options?: FormqOptions
): [state: (S & Partial<FormqState>) | FormqState, formAction: (payload: FormData) => void, isPending: boolean];
