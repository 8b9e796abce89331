// React as the page's import map serves it to formq-react.js ("react"):
// the same copy the page's own components use.
import * as React from "react";

export default React;
export const { useActionState, useEffect, useRef, useState, version } = React;
