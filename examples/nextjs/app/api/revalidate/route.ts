import { revalidatePath, revalidateTag } from "next/cache";
import { verify } from "@/lib/webhook";

// formq tells this route of every revalidation event
// (FORMQ_NEXT_REVALIDATE_URL, or FORMQ_REVALIDATE_URL), signed with
// FORMQ_REVALIDATE_SECRET: the paths and tags the action's `revalidate`
// names, after the submission's steps are done. List every instance of
// the app in FORMQ_NEXT_REVALIDATE_URL: each caches on its own.

interface RevalidateEvent {
  id: string; // the event's stream id
  type: "revalidate";
  action: string;
  paths?: string[];
  tags?: string[];
}

export async function POST(request: Request) {
  const v = await verify<RevalidateEvent>(request, "FORMQ_REVALIDATE_SECRET");
  if (!v.ok) return Response.json({ ok: false, error: v.error }, { status: v.status });
  const ev = v.body;
  for (const tag of ev.tags ?? []) {
    // A webhook is not a Server Action, so updateTag is not available:
    // { expire: 0 } expires the data now, and the next request renders
    // fresh data instead of being served the stale page.
    revalidateTag(tag, { expire: 0 });
  }
  for (const path of ev.paths ?? []) {
    if (path.startsWith("/")) revalidatePath(path);
  }
  // formq sends the same webhook-id again only when it did not get this
  // answer; revalidating twice is harmless.
  return Response.json({ revalidated: true, event: ev.id, now: Date.now() });
}
