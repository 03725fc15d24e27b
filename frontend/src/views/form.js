// Labelled form fields with inline, announced errors.
import { h, notice, uid } from "../dom.js";

/**
 * A labelled input. Returns { node, input, setError(message | null) }; the error is tied to the input with
 * aria-describedby and aria-invalid, so screen readers read it with the field.
 */
export function field({ label, hint, ...attrs }) {
  const id = uid(attrs.name ?? "field");
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const input = h("input", { id, class: "input", ...attrs, "aria-describedby": hintId });
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const node = h(
    "div",
    { class: "field" },
    h("label", { for: id, class: "label" }, label),
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    input,
    error,
  );
  function setError(message) {
    error.hidden = !message;
    error.textContent = message ?? "";
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
    } else {
      input.removeAttribute("aria-invalid");
      if (hintId) input.setAttribute("aria-describedby", hintId);
      else input.removeAttribute("aria-describedby");
    }
  }
  return { node, input, setError };
}

/** A slot for the form-level message: replaced on every submit. */
export function messageSlot() {
  const node = h("div", { class: "form-message" });
  return {
    node,
    error(message) {
      node.replaceChildren(notice("error", message));
    },
    clear() {
      node.replaceChildren();
    },
  };
}

/** Disable a submit button and show what is happening; returns a function that restores it. */
export function busy(button, label) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  return () => {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = original;
  };
}
