// What the guide imports from "@/app/actions": here the formq action's
// URL (the page sets window.FORMQ to formq's address).
export const createUser = window.FORMQ + "/actions/create-user";
