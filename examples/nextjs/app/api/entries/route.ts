import { addEntry } from "@/lib/entries";
import { verify } from "@/lib/webhook";

// formq's worker posts each accepted guestbook submission here (the
// `save` webhook step of formq/actions.yaml), signed with
// GUESTBOOK_WEBHOOK_SECRET. The route stores the entry and answers its id
// as the step's data, which formq puts in the action's redirect
// (/entries/{steps.save.id}); or it refuses the entry with a field error,
// which formq shows beside the field like any validation error. The page
// shows a stored entry once formq's revalidation event reaches
// app/api/revalidate.

interface Submission {
  id: string;
  action: string;
  values: Record<string, unknown>;
  receivedAt: string;
}

export async function POST(request: Request) {
  const v = await verify<Submission>(request, "GUESTBOOK_WEBHOOK_SECRET");
  if (!v.ok) return Response.json({ ok: false, error: v.error }, { status: v.status });
  const sub = v.body;
  if (sub.action !== "guestbook") return Response.json({ ok: false, error: `unexpected action ${sub.action}` }, { status: 400 });
  const entry = {
    id: sub.id,
    name: String(sub.values.name ?? ""),
    message: String(sub.values.message ?? ""),
    receivedAt: sub.receivedAt,
  };
  const { errors } = await addEntry(entry);
  // A 422 with field errors refuses the submission: formq does not retry
  // it, runs no later step, and the person sees the error beside the field.
  if (errors) return Response.json({ errors }, { status: 422 });
  // A 2xx tells formq the step is done (a repeat of the same id too); data
  // is what {steps.save.KEY} reads.
  return Response.json({ data: { id: entry.id } });
}
