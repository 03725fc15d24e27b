import { h } from "../dom.js";

export function notFoundView(_app, { message } = {}) {
  return {
    title: "Page not found",
    node: h(
      "section",
      { class: "panel" },
      h("h1", { tabindex: "-1" }, "Page not found"),
      h("p", {}, message ?? "There is nothing at this address. It may have been moved or deleted."),
      h("p", {}, h("a", { href: "/feed", class: "btn btn-primary" }, "Go to the feed")),
    ),
  };
}
