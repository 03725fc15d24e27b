// One post: the photo, who posted it and when; the owner can delete it. While the compressor has not yet
// written the rendition (state "uploaded"), the card asks for the media URL a few times and swaps it in.
import { h, notice } from "../dom.js";
import { fullDate, timeAgo } from "../format.js";

const RENDITION_CHECKS_MS = [1000, 1500, 2500, 4000, 6000, 10000, 15000];

/** Update every "5 minutes ago" on the page. */
export function refreshTimes() {
  for (const time of document.querySelectorAll("time[data-relative]")) {
    time.textContent = timeAgo(new Date(time.dateTime));
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("Stopped", "AbortError"));
      },
      { once: true },
    );
  });
}

/** docs/design.md: renditions live under {privacy}/renditions/, so their URL paths say so. */
function isRendition(uri) {
  return new URL(uri, window.location.href).pathname.includes("/renditions/");
}

function loadImage(uri) {
  const probe = new Image();
  probe.src = uri;
  return probe.decode().catch(() => undefined);
}

/**
 * @param {object} item a feed item (id, creator, creator_username, download_url, created_at, public, state)
 * @param {object} app
 * @param {{signal: AbortSignal, onRemoved?: (card: HTMLElement) => void}} options
 */
export function createCard(item, app, { signal, onRemoved }) {
  const created = new Date(item.created_at);
  const mine = app.session.isMe(item.creator);
  const profile = `/feed/by_user/${item.creator}`;
  const authorId = `post-${item.id}-author`;

  const img = h("img", {
    src: item.download_url,
    alt: `Photo by ${item.creator_username}, posted ${fullDate(created)}`,
    loading: "lazy",
    decoding: "async",
  });
  const photo = h("div", { class: "photo" }, img);

  /** Show why the photo is missing instead of a broken image; with no content, clear that. */
  function photoProblem(...content) {
    photo.querySelector(".photo-error")?.remove();
    photo.classList.toggle("photo-broken", content.length > 0);
    if (content.length) photo.append(h("div", { class: "photo-error", role: "alert" }, ...content));
  }
  const retry = () => {
    const src = img.src;
    img.removeAttribute("src");
    img.src = src;
  };
  img.addEventListener("error", () => {
    if (card.dataset.state === "rejected" || photo.classList.contains("photo-broken")) return;
    photoProblem(
      h("p", {}, "This photo couldn't be loaded. Check your connection, then try again."),
      h("button", { type: "button", class: "btn btn-small", onClick: retry }, "Try again"),
    );
    window.addEventListener("online", retry, { once: true, signal });
  });
  img.addEventListener("load", () => photoProblem());

  const status = h("p", { class: "card-status", role: "status" });
  const actions = h("div", { class: "card-actions" });
  const card = h(
    "article",
    { class: "card", "data-id": item.id, "data-state": item.state, "aria-labelledby": authorId },
    h(
      "header",
      { class: "card-head" },
      h("span", { class: "avatar", "aria-hidden": "true" }, item.creator_username.slice(0, 1).toUpperCase()),
      h(
        "div",
        { class: "card-meta" },
        h("a", { id: authorId, class: "author", href: profile }, item.creator_username),
        h("time", { datetime: created.toISOString(), title: fullDate(created), "data-relative": "" }, timeAgo(created)),
      ),
      item.public ? null : h("span", { class: "badge badge-private", title: "Only you can see this post" }, "Private"),
    ),
    photo,
    h("footer", { class: "card-foot" }, status, actions),
  );

  function setStatus(text) {
    status.textContent = text;
  }

  function showDelete() {
    actions.replaceChildren(
      h("button", { type: "button", class: "btn btn-quiet btn-small", onClick: askDelete }, "Delete post"),
    );
  }

  function askDelete() {
    const keep = h("button", { type: "button", class: "btn btn-small", onClick: cancel }, "Keep it");
    const confirm = h("button", { type: "button", class: "btn btn-danger btn-small", onClick: remove }, "Yes, delete");
    actions.replaceChildren(h("span", { class: "confirm-text" }, "Delete this post for good?"), confirm, keep);
    keep.focus();
    function cancel() {
      showDelete();
      actions.querySelector("button").focus();
    }
    async function remove() {
      confirm.disabled = true;
      keep.disabled = true;
      confirm.textContent = "Deleting…";
      try {
        await app.api.remove(item.id);
      } catch (error) {
        if (error.status !== 404) {
          // 404: it is gone already, which is what was asked
          showDelete();
          actions.prepend(notice("error", `Couldn't delete the post. ${error.message}`));
          actions.querySelector("button").focus();
          return;
        }
      }
      onRemoved?.(card);
    }
  }

  async function watchRendition() {
    if (mine) setStatus("Optimizing your photo…");
    for (const delay of RENDITION_CHECKS_MS) {
      await sleep(delay, signal);
      let media;
      try {
        media = await app.api.media(item.id, signal);
      } catch (error) {
        if (error.status === 422) {
          card.dataset.state = "rejected";
          setStatus("");
          const reason = error.message.replace(/\.?$/, ".");
          photoProblem(h("p", {}, `Yoctogram couldn't use this file. ${reason} Delete it and share a photo instead.`));
          return;
        }
        if (error.status === 404 || error.status === 401) return; // deleted meanwhile, or logged out
        continue; // offline or a server hiccup: the next check may work
      }
      if (isRendition(media.uri)) {
        await loadImage(media.uri);
        img.src = media.uri;
        card.dataset.state = "ready";
        setStatus("");
        return;
      }
    }
    setStatus(mine ? "Still optimizing; the lighter version will show next time you open the page." : "");
  }

  if (mine) showDelete();
  if (item.state === "uploaded") {
    watchRendition().catch((error) => {
      if (error.name !== "AbortError") throw error;
    });
  }
  return card;
}
