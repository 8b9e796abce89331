import { addEntry } from "@/lib/entries";
import { verify } from "@/lib/webhook";

// formq's worker posts each accepted guestbook submission here (the
// `webhook` step of formq/actions.yaml), signed with
// GUESTBOOK_WEBHOOK_SECRET. Storing it is all this route does: the page
// shows it once formq's revalidation event reaches app/api/revalidate.

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
  if (sub.action !== "guestbook") return Response.json({ ok: false, error: `unexpected action ${sub.action}` }, { status: 422 });
  const added = await addEntry({
    id: sub.id,
    name: String(sub.values.name ?? ""),
    message: String(sub.values.message ?? ""),
    receivedAt: sub.receivedAt,
  });
  // A 2xx tells formq the step is done; a repeat (same id) is a success too.
  return Response.json({ ok: true, added });
}
