// Code written against the types `api types` makes of
// ../actions.yaml (every-rule): a route handler receiving the webhook, a
// form's values, the submission status. Each @ts-expect-error line must be
// refused, so types that accepted anything would fail the check.
import type {
  Actions,
  EveryRuleAppAnswer,
  EveryRuleField,
  EveryRuleValidationError,
  EveryRuleValues,
  EveryRuleWebhook,
  SubmissionState,
  SubmissionStatus,
  SubmitAnswer,
} from "./actions";

export async function POST(req: Request): Promise<Response> {
  const hook = (await req.json()) as EveryRuleWebhook;
  const handle: string = hook.values.handle;
  const plan: "free" | "pro" = hook.values.plan;
  const tags: Array<"a" | "b" | "c"> = hook.values.tags;
  const age: number | undefined = hook.values.age;
  // Each file comes with a link that downloads it without credentials.
  const links: Array<[string, string]> = hook.files.map((f) => [f.url, f.expiresAt]);
  const answer: EveryRuleAppAnswer =
    handle === "taken"
      ? { errors: { handle: ["This handle is taken"] }, message: "Please check the form." }
      : { data: { id: 42, plan, tags: tags.join(","), age: age ?? null, files: links.length } };
  return Response.json(answer, { status: "data" in answer ? 200 : 422 });
}

// @ts-expect-error an app's refusal names the action's fields only
export const unknownField: EveryRuleAppAnswer = { errors: { nickname: ["Taken"] } };
// @ts-expect-error a refusal has errors or a message
export const emptyRefusal: EveryRuleAppAnswer = {};
// @ts-expect-error data values are strings, numbers, booleans or null
export const nestedData: EveryRuleAppAnswer = { data: { user: { id: 1 } } };
// @ts-expect-error plan is free or pro
export const gold: EveryRuleValues["plan"] = "gold";

export const values: Actions["every-rule"]["values"] = {
  handle: "ada", email: "ada@example.com", confirm: "ada@example.com", plan: "pro", tags: ["a"], agree: true,
};
// @ts-expect-error handle, email, confirm, plan, tags and agree are required
export const missing: Actions["every-rule"]["values"] = { handle: "ada" };
// @ts-expect-error no such field
export const misspelt: EveryRuleField = "emial";

export function describe(s: SubmissionStatus): string {
  switch (s.status) {
    case "rejected":
      return `${Object.keys(s.errors ?? {}).join(", ")} ${s.message ?? ""} ${Object.keys(s.kept ?? {}).length}`;
    case "completed":
      return `${s.redirect ?? ""} ${JSON.stringify(s.data ?? {})} ${s.steps.map((st) => st.name ?? st.type).join(",")}`;
    default:
      return s.status;
  }
}
export const rejected: SubmissionState = "rejected";
// @ts-expect-error no such state
export const done: SubmissionState = "done";

export function read(a: SubmitAnswer, refused: EveryRuleValidationError): string {
  const e: string[] | undefined = refused.errors.handle;
  if (a.ok) return a.submission.statusUrl;
  return `${a.error.code} ${e?.join() ?? ""}`;
}
