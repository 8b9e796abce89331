// client/formq.d.ts and formq-react.d.ts (the @formq/client package's types) against the
// answers of formq's OpenAPI document, as `api types` writes them: every
// answer the server gives must be a value the client's types describe,
// and the states must be the same lists, so drift of either fails tsc.
import type { DeliveryAttempt, KeptFile, RestoredState, Status, Step } from "@formq/client";
import type { KeptFile as ReactKeptFile, Submission } from "@formq/client/react";
import type * as API from "./actions";

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const yes = <T extends true>(t: T): T => t;

export const status = (s: API.SubmissionStatus): Status => s;
export const step = (s: API.StepStatus): Step => s;
export const kept = (k: API.KeptFile): KeptFile => k;
export const delivery = (d: API.DeliveryAttempt): DeliveryAttempt => d;
export const state = (v: API.ValidationError): RestoredState => v;

export const states = yes<Same<Status["status"], API.SubmissionStatus["status"]>>(true);
export const stepStates = yes<Same<Step["state"], API.StepStatus["state"]>>(true);

export const reactKept = (k: API.KeptFile): ReactKeptFile => k;
export const reactStates = yes<Same<Submission["status"], API.SubmissionStatus["status"]>>(true);
export const reactSubmission = (s: API.SubmissionStatus): Submission => s;
