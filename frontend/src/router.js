// History-API routing: links to same-origin paths change the view without a page load; the server answers
// index.html for every such path, so a reload or a shared link opens the same view.

export class Router {
  #routes = [];
  #fallback = null;
  #render;

  /** @param {(match: {view: Function, params: object, url: URL}) => Promise<void>|void} render */
  constructor(render) {
    this.#render = render;
  }

  add(pattern, view) {
    this.#routes.push({ pattern, view });
    return this;
  }

  fallback(view) {
    this.#fallback = view;
    return this;
  }

  start() {
    window.addEventListener("popstate", () => this.#show());
    document.addEventListener("click", (event) => this.#onClick(event));
    return this.#show();
  }

  /** Go to a path (push a history entry), or replace the current one. */
  navigate(path, { replace = false } = {}) {
    const url = new URL(path, window.location.origin);
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    return this.#show();
  }

  /** Render the current URL again (e.g. after logging in or out). */
  refresh() {
    return this.#show();
  }

  #show() {
    const url = new URL(window.location.href);
    for (const { pattern, view } of this.#routes) {
      const match = pattern.exec(url.pathname);
      if (match) {
        return this.#render({ view, params: match.groups ?? {}, url });
      }
    }
    return this.#render({ view: this.#fallback, params: {}, url });
  }

  #onClick(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest?.("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin) return;
    if (/^\/(api|public|private)\//.test(url.pathname)) return; // the server's, not ours
    if (url.pathname === window.location.pathname && url.hash) return; // in-page anchor (skip link)
    event.preventDefault();
    this.navigate(url.pathname + url.search);
  }
}
