// Entry point: load the runtime config, restore the session, then route.
import "./styles.css";
import { createApi } from "./api.js";
import { loadConfig } from "./config.js";
import { h, notice } from "./dom.js";
import { Router } from "./router.js";
import { Session } from "./session.js";
import { loginView, signupView } from "./views/auth.js";
import { refreshTimes } from "./views/card.js";
import { creatorView, feedView } from "./views/feed.js";
import { notFoundView } from "./views/notfound.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const banners = document.getElementById("banners");

const flashes = [];

/** What every view gets: settings, the API client, the session, navigation and one-time messages. */
const app = {
  config: null,
  api: null,
  session: new Session(),
  router: null,
  /** Show a message at the top of the next page that is rendered. */
  flash(message, kind = "success") {
    flashes.push({ message, kind });
  },
  navigate(path, options) {
    return app.router.navigate(path, options);
  },
};

function loginPathFor(url) {
  const here = url.pathname + url.search;
  return here.startsWith("/login") || here.startsWith("/signup") ? "/login" : `/login?next=${encodeURIComponent(here)}`;
}

function onSessionExpired() {
  if (!app.session.token) return; // several requests may notice at once; act once
  app.session.clear();
  app.flash("Your session has ended. Log in again to continue.", "info");
  const target = loginPathFor(new URL(window.location.href));
  if (app.router) app.navigate(target, { replace: true });
  else window.history.replaceState(null, "", target);
}

// --- page chrome -----------------------------------------------------------------------------------
function navLink(href, label, extra = {}) {
  return h("li", {}, h("a", { href, class: "nav-link", ...extra }, label));
}

function renderTopbar() {
  const { session } = app;
  const items = [navLink("/feed", "Feed")];
  if (session.loggedIn) {
    items.push(
      navLink(`/feed/by_user/${session.user.id}`, "My posts"),
      h("li", { class: "whoami", title: `Logged in as ${session.user.username}` }, `@${session.user.username}`),
      h("li", {}, h("button", { type: "button", class: "nav-link", onClick: logOut }, "Log out")),
    );
  } else {
    items.push(navLink("/login", "Log in"), navLink("/signup", "Sign up", { "data-primary": "" }));
  }
  topbar.replaceChildren(
    h(
      "div",
      { class: "topbar-inner" },
      h(
        "div",
        { class: "brand-wrap" },
        h(
          "a",
          { href: "/feed", class: "brand" },
          h("span", { class: "brand-mark", "aria-hidden": "true" }),
          "Yoctogram",
        ),
        environmentBadge(),
      ),
      h("nav", { "aria-label": "Main" }, h("ul", { class: "nav" }, items)),
    ),
  );
  markCurrentLink();
}

/** Outside production, say which environment this is, so nobody mistakes staging for the real thing. */
function environmentBadge() {
  const environment = app.config?.environment ?? "";
  if (!environment || ["prod", "production"].includes(environment)) return null;
  return h("span", { class: "env-badge", title: `The ${environment} environment, not production` }, environment);
}

function markCurrentLink() {
  for (const link of topbar.querySelectorAll("a.nav-link")) {
    if (link.pathname === window.location.pathname) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function logOut() {
  // The server revokes the token first (on every server at once), so a copy of it left in this browser
  // is worthless; the page logs out locally whatever the answer (already revoked, offline).
  let revoked = true;
  try {
    await app.api.logout();
  } catch (error) {
    revoked = error.status === 401; // already ended
  }
  app.session.clear();
  app.flash(
    revoked
      ? "You're logged out. See you soon!"
      : "You're logged out on this device. We couldn't reach Yoctogram to end the session everywhere.",
    "info",
  );
  app.navigate("/login");
}

function setBanner(id, content) {
  document.getElementById(id)?.remove();
  if (content) banners.append(h("div", { id, class: "banner" }, content));
}

// --- rendering views -------------------------------------------------------------------------------
let currentView = null;
let firstRender = true;

async function render({ view, params, url }) {
  currentView?.abort();
  const controller = new AbortController();
  currentView = controller;
  let result;
  try {
    result = await view(app, { params, url, signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) return;
    result = {
      title: "Something went wrong",
      node: h(
        "section",
        { class: "panel" },
        h("h1", { tabindex: "-1" }, "Something went wrong"),
        notice("error", error.message || String(error)),
        h("button", { type: "button", class: "btn", onClick: () => app.router.refresh() }, "Try again"),
      ),
    };
  }
  if (controller.signal.aborted) return;
  if (result.redirect) {
    app.navigate(result.redirect, { replace: true });
    return;
  }
  document.title = result.title ? `${result.title} · Yoctogram` : "Yoctogram";
  const messages = flashes.splice(0).map(({ message, kind }) => notice(kind, message));
  main.replaceChildren(...messages, result.node);
  markCurrentLink();
  if (!firstRender) {
    window.scrollTo(0, 0);
    // Tell screen readers the page changed: focus lands on its heading.
    (main.querySelector("h1") ?? main).focus({ preventScroll: true });
  }
  firstRender = false;
}

function showStartupError(message) {
  document.title = "Yoctogram can't start";
  main.replaceChildren(
    h(
      "section",
      { class: "panel" },
      h("h1", {}, "Yoctogram can't start"),
      notice("error", message),
      h("button", { type: "button", class: "btn", onClick: () => window.location.reload() }, "Try again"),
    ),
  );
}

async function boot() {
  try {
    app.config = await loadConfig();
  } catch (error) {
    showStartupError(error.message);
    return;
  }
  app.api = createApi({
    base: app.config.apiBase,
    getToken: () => app.session.token,
    onExpired: onSessionExpired,
  });
  if (app.session.token) {
    try {
      app.session.set(app.session.token, await app.api.me());
    } catch (error) {
      if (error.status !== 401) {
        showStartupError(error.message);
        return;
      }
    }
  }
  app.session.onChange(renderTopbar);
  renderTopbar();

  app.router = new Router(render)
    .add(/^\/$/, () => ({ redirect: "/feed" }))
    .add(/^\/feed\/?$/, feedView)
    .add(/^\/feed\/by_user\/(?<id>[^/]+)\/?$/, creatorView)
    .add(/^\/login\/?$/, loginView)
    .add(/^\/signup\/?$/, signupView)
    .fallback(notFoundView);
  await app.router.start();
}

window.addEventListener("offline", () =>
  setBanner("offline-banner", notice("warning", "You're offline. Yoctogram will work again once you reconnect.")),
);
window.addEventListener("online", () => setBanner("offline-banner", null));
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason?.name === "AbortError") return;
  setBanner(
    "crash-banner",
    notice(
      "error",
      "Something went wrong on this page. Reload it to continue. ",
      h("button", { type: "button", class: "btn btn-small", onClick: () => window.location.reload() }, "Reload"),
    ),
  );
});
setInterval(refreshTimes, 60_000);

boot();
