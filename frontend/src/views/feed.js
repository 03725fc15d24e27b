// The feeds: everyone's latest posts, and one creator's posts (mine include my private ones).
// Both page through the API's cursor as the reader scrolls; the feed response carries all a card needs.
import { h, notice } from "../dom.js";
import { createCard } from "./card.js";
import { createComposer } from "./composer.js";
import { notFoundView } from "./notfound.js";

const PAGE_SIZE = 12;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An infinitely scrolling list of cards (ARIA "feed" pattern). A "Load more" button at the end is both the
 * scroll trigger (when it nears the viewport) and the keyboard way to get the next page.
 * @param {{load: (cursor: string|null, signal: AbortSignal) => Promise<object>, label: string,
 *          empty: string, signal: AbortSignal}} options
 */
function createFeed(app, { load, label, empty, signal }) {
  const list = h("div", { class: "feed", role: "feed", "aria-label": label, "aria-busy": "false" });
  const foot = h("div", { class: "feed-foot" });
  const seen = new Set();
  let cursor = null;
  let done = false;
  let loading = false;

  const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more(), {
    rootMargin: "0px 0px 800px 0px",
  });
  signal.addEventListener("abort", () => observer.disconnect(), { once: true });

  function add(item, { first = false } = {}) {
    if (seen.has(item.id)) return;
    seen.add(item.id);
    const card = createCard(item, app, { signal, onRemoved: removed });
    if (first) list.prepend(card);
    else list.append(card);
    foot.querySelector(".feed-empty")?.remove();
  }

  function removed(card) {
    const next = card.nextElementSibling ?? card.previousElementSibling;
    seen.delete(card.dataset.id);
    card.remove();
    if (!list.children.length && done) showEnd();
    const deleted = notice("success", "Post deleted.");
    foot.prepend(deleted);
    setTimeout(() => deleted.remove(), 6000);
    // Keep the keyboard user in the feed: focus moves to the neighbouring post's author link.
    (next?.querySelector("a") ?? list.closest("section")?.querySelector("h1"))?.focus();
  }

  function showEnd() {
    foot.replaceChildren(
      list.children.length
        ? h("p", { class: "muted feed-end" }, "You're all caught up.")
        : h("p", { class: "feed-empty muted" }, empty),
    );
  }

  function showMoreButton() {
    const button = h("button", { type: "button", class: "btn", onClick: more }, "Load more posts");
    foot.replaceChildren(button);
    observer.disconnect();
    observer.observe(button); // fires at once if the button is already near the viewport
  }

  async function more() {
    if (loading || done || signal.aborted) return;
    loading = true;
    list.setAttribute("aria-busy", "true");
    observer.disconnect();
    foot.replaceChildren(h("p", { class: "muted loading", role: "status" }, "Loading posts…"));
    try {
      const page = await load(cursor, signal);
      for (const item of page.results) add(item);
      cursor = page.next_cursor;
      done = !cursor;
    } catch (error) {
      if (signal.aborted) return;
      foot.replaceChildren(
        notice(
          "error",
          `Couldn't load posts. ${error.message} `,
          h("button", { type: "button", class: "btn btn-small", onClick: more }, "Try again"),
        ),
      );
      return;
    } finally {
      loading = false;
      list.setAttribute("aria-busy", "false");
    }
    if (done) showEnd();
    else showMoreButton();
  }

  more();
  return { node: h("div", { class: "feed-wrap" }, list, foot), prepend: (item) => add(item, { first: true }) };
}

function joinPrompt() {
  return h(
    "aside",
    { class: "panel join" },
    h("p", {}, h("strong", {}, "Share your own photos."), " Public for everyone, or private just for you."),
    h(
      "p",
      { class: "join-actions" },
      h("a", { href: "/signup", class: "btn btn-primary" }, "Sign up"),
      h("a", { href: "/login?next=/feed", class: "btn" }, "Log in"),
    ),
  );
}

function page(title, intro, ...content) {
  return h(
    "section",
    { class: "stack", "aria-labelledby": "page-title" },
    h(
      "div",
      { class: "page-head" },
      h("h1", { id: "page-title", tabindex: "-1" }, title),
      intro ? h("p", { class: "muted" }, intro) : null,
    ),
    ...content,
  );
}

export function feedView(app, { signal }) {
  const feed = createFeed(app, {
    load: (cursor, s) => app.api.latest(cursor, PAGE_SIZE, s),
    label: "Latest posts",
    empty: "No posts yet. Be the first to share a photo!",
    signal,
  });
  const top = app.session.loggedIn ? createComposer(app, { onPosted: feed.prepend }) : joinPrompt();
  return {
    title: "Feed",
    node: page(
      "Latest posts",
      app.session.loggedIn
        ? "Everyone's public photos and your private ones, newest first."
        : "Everyone's public photos, newest first.",
      top,
      feed.node,
    ),
  };
}

export async function creatorView(app, { params, url, signal }) {
  if (!UUID.test(params.id)) return notFoundView(app, { url, message: "There is no such person on Yoctogram." });
  const mine = app.session.isMe(params.id);
  let name = mine ? app.session.user.username : null;
  let bio = "";
  if (!mine) {
    try {
      ({ username: name, bio } = await app.api.profile(params.id, signal));
    } catch (error) {
      if (error.status === 404) return notFoundView(app, { url, message: "There is no such person on Yoctogram." });
      throw error;
    }
  }
  const feed = createFeed(app, {
    load: (cursor, s) => app.api.byUser(params.id, cursor, PAGE_SIZE, s),
    label: mine ? "My posts" : `Posts by ${name}`,
    empty: mine
      ? "You haven't shared anything yet. Choose a photo above to start."
      : `${name} hasn't shared any public photos yet.`,
    signal,
  });
  if (mine) {
    return {
      title: "My posts",
      node: page(
        "My posts",
        "Everything you've shared. Only you can see the ones marked Private.",
        createComposer(app, { onPosted: feed.prepend }),
        feed.node,
      ),
    };
  }
  return { title: name, node: page(name, bio || `Photos shared by ${name}.`, feed.node) };
}
