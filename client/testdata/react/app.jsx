// The test page: the guide's form on React 19, rendered into #root.
import { createRoot } from "react-dom/client";
import { version } from "react";
import { CreateUserForm } from "./create-user-form.jsx";

window.reactVersion = version;
createRoot(document.getElementById("root")).render(<CreateUserForm />);
