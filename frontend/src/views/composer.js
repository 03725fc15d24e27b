// "Share a photo": choose a file (checked before sending), public or private, watch it upload straight to
// S3, then confirm; the new post is handed to onPosted and shows at the top without a page load.
import { h, notice, uid } from "../dom.js";
import { formatBytes } from "../format.js";
import { ACCEPTED_TYPES, checkFile, describeAccepted, postToStorage } from "../upload.js";

const CONFIRM_RETRIES_MS = [500, 1000, 2000];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Confirm the upload; S3 may take a moment to show the object (409), so ask again a few times. */
async function confirmUpload(api, imageId) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api.confirmUpload(imageId);
    } catch (error) {
      if (error.status !== 409 || attempt >= CONFIRM_RETRIES_MS.length) throw error;
      await sleep(CONFIRM_RETRIES_MS[attempt]);
    }
  }
}

/** What went wrong, for a person: what happened to the photo and what to do next. */
function failureMessage(error, step) {
  if (error.status === 401) return "Your session ended before the photo was shared. Log in and share it again.";
  if (step === "confirm" && error.status === 409) return "The photo didn't reach storage. Share it again.";
  if (step === "confirm") {
    return `Your photo was uploaded, but Yoctogram couldn't confirm it. ${error.message} Reload the page in a minute to see whether it is there.`;
  }
  return `Your photo was not shared. ${error.message}`;
}

export function createComposer(app, { onPosted }) {
  const maxBytes = app.config.maxUploadBytes;
  const id = uid("composer");
  let previewUrl = null;
  let upload = null; // AbortController of the upload in flight

  const input = h("input", {
    id: `${id}-file`,
    type: "file",
    name: "photo",
    class: "file-input",
    accept: ACCEPTED_TYPES.join(","),
    "aria-describedby": `${id}-help`,
  });
  const preview = h("img", { class: "preview", alt: "", hidden: true });
  const chosen = h("p", { class: "chosen", id: `${id}-chosen` }, "No photo chosen yet.");
  const picker = h(
    "div",
    { class: "picker" },
    input,
    h("label", { for: `${id}-file`, class: "btn picker-button" }, "Choose a photo"),
    h("div", { class: "picker-info" }, chosen, h("p", { class: "hint", id: `${id}-help` }, describeAccepted(maxBytes))),
    preview,
  );

  const privacy = h(
    "fieldset",
    { class: "privacy" },
    h("legend", {}, "Who can see it?"),
    radio("public", "Everyone", "Public", true),
    radio("private", "Only me", "Private", false),
  );
  function radio(value, label, title, checked) {
    const radioId = `${id}-${value}`;
    return h(
      "div",
      { class: "choice" },
      h("input", { type: "radio", id: radioId, name: `${id}-privacy`, value, checked }),
      h("label", { for: radioId }, h("strong", {}, title), ` · ${label}`),
    );
  }

  const bar = h("progress", { max: "100", value: "0", "aria-labelledby": `${id}-progress-label` });
  const barLabel = h("span", { id: `${id}-progress-label`, class: "progress-label" }, "Uploading… 0%");
  const progress = h("div", { class: "progress", hidden: true }, barLabel, bar);
  const message = h("div", { class: "form-message", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Share");
  const cancel = h("button", { type: "button", class: "btn", hidden: true, onClick: () => upload?.abort() }, "Cancel");

  const form = h(
    "form",
    { class: "panel composer", "aria-labelledby": `${id}-title`, novalidate: true },
    h("h2", { id: `${id}-title` }, "Share a photo"),
    picker,
    privacy,
    progress,
    message,
    h("div", { class: "composer-actions" }, submit, cancel),
  );

  function say(kind, text) {
    message.replaceChildren(text ? notice(kind, text) : "");
  }

  function setPreview(file) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = file ? URL.createObjectURL(file) : null;
    preview.hidden = !previewUrl;
    if (previewUrl) preview.src = previewUrl;
    else preview.removeAttribute("src");
  }

  function onChosen() {
    const file = input.files?.[0] ?? null;
    say(null);
    if (!file) {
      chosen.textContent = "No photo chosen yet.";
      setPreview(null);
      return;
    }
    chosen.textContent = `${file.name} (${formatBytes(file.size)})`;
    const problem = checkFile(file, maxBytes);
    setPreview(problem ? null : file);
    if (problem) say("error", problem);
  }
  input.addEventListener("change", onChosen);

  // Dropping a file on the picker is the same as choosing it.
  picker.addEventListener("dragover", (event) => {
    event.preventDefault();
    picker.classList.add("dragging");
  });
  picker.addEventListener("dragleave", () => picker.classList.remove("dragging"));
  picker.addEventListener("drop", (event) => {
    event.preventDefault();
    picker.classList.remove("dragging");
    if (event.dataTransfer?.files?.length) {
      input.files = event.dataTransfer.files;
      onChosen();
    }
  });

  function setUploading(on) {
    submit.disabled = on;
    input.disabled = on;
    for (const choice of privacy.querySelectorAll("input")) choice.disabled = on;
    cancel.hidden = !on;
    progress.hidden = !on;
    form.setAttribute("aria-busy", String(on));
  }

  function setProgress(fraction) {
    const percent = Math.round(fraction * 100);
    bar.value = percent;
    barLabel.textContent = percent >= 100 ? "Finishing…" : `Uploading… ${percent}%`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (upload) return;
    const file = input.files?.[0] ?? null;
    const problem = checkFile(file, maxBytes);
    if (problem) {
      say("error", problem);
      input.focus();
      return;
    }
    const visibility = privacy.querySelector("input:checked").value;
    say(null);
    setProgress(0);
    setUploading(true);
    upload = new AbortController();
    let step = "start";
    try {
      const slot = await app.api.generateUpload(visibility, file.type);
      step = "upload";
      await postToStorage({ url: slot.url, fields: slot.fields, file, onProgress: setProgress, signal: upload.signal });
      setProgress(1);
      step = "confirm";
      const confirmed = await confirmUpload(app.api, slot.id);
      // The card needs the image's URL; if asking fails, show the local file until the card finds it.
      const media = await app.api.media(slot.id).catch(() => null);
      onPosted({
        id: slot.id,
        creator: app.session.user.id,
        creator_username: app.session.user.username,
        download_url: media?.uri ?? URL.createObjectURL(file),
        created_at: new Date().toISOString(),
        public: visibility === "public",
        state: media ? (confirmed.state ?? "uploaded") : "uploaded",
      });
      form.reset();
      onChosen();
      say(
        "success",
        visibility === "public" ? "Shared! Your photo is now in the feed." : "Saved! Only you can see this photo.",
      );
    } catch (error) {
      if (error.name === "AbortError") say("info", "Upload cancelled. Your photo was not shared.");
      else say("error", failureMessage(error, step));
    } finally {
      upload = null;
      setUploading(false);
    }
  });

  return form;
}
