"use client";

// The guide's CreateUserForm (Next.js, "Forms with Server Actions":
// validation errors and useActionState), changed in one import: formq's
// useFormq takes the place of React's useActionState, and createUser is
// the formq action's URL rather than a server function.
import { useFormq as useActionState } from "formq-react"; // was: import { useActionState } from "react";
import { createUser } from "./actions.js";

const initialState = {
  message: "",
};

export function CreateUserForm() {
  const [state, formAction, pending] = useActionState(createUser, initialState);

  return (
    <form action={formAction}>
      <label htmlFor="email">Email</label>
      <input type="text" id="email" name="email" defaultValue={state?.values?.email} required />
      {state?.errors?.email && <p id="email-error">{state.errors.email}</p>}
      <label htmlFor="avatar">Avatar</label>
      <input type="file" id="avatar" name="avatar" />
      {state?.kept?.avatar && <p id="avatar-kept">{state.kept.avatar.map((f) => f.filename).join(", ")} kept</p>}
      <p aria-live="polite">{state?.message}</p>
      <button disabled={pending}>Sign up</button>
    </form>
  );
}
