// Uploading a file straight to S3 with the presigned POST from /images/upload/{privacy}/generate.
import { formatBytes } from "./format.js";

/** The formats the compressor turns into renditions (compressor/rendition.py, ALLOWED_FORMATS). */
export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/avif"];
const ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, BMP or AVIF";

export class UploadError extends Error {}

/** Why this file cannot be sent (a sentence saying what to do instead), or null when it can. */
export function checkFile(file, maxBytes) {
  if (!file) return "Choose a photo first.";
  if (!ACCEPTED_TYPES.includes(file.type)) {
    return `“${file.name}” isn't a photo Yoctogram can show. Choose a ${ACCEPTED_NAMES} image.`;
  }
  if (file.size === 0) return `“${file.name}” is empty. Choose another photo.`;
  if (file.size > maxBytes) {
    const limit = formatBytes(maxBytes, 0);
    const size = formatBytes(file.size);
    const shown = size === limit ? `${file.size.toLocaleString()} bytes` : size;
    return `“${file.name}” is ${shown}, over the ${limit} limit. Choose a smaller photo, or shrink it first.`;
  }
  return null;
}

export function describeAccepted(maxBytes) {
  return `${ACCEPTED_NAMES}, up to ${formatBytes(maxBytes, 0)}.`;
}

function storageMessage(xhr) {
  const text = xhr.responseText ?? "";
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "";
  const detail = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
  if (code === "EntityTooLarge") return "The photo is larger than the upload limit. Choose a smaller photo.";
  if (/expired/i.test(detail)) return "The upload took too long and its permission expired. Share the photo again.";
  const reason = [code || `error ${xhr.status}`, detail].filter(Boolean).join(": ");
  return `The photo storage refused the upload (${reason}). Try again; if it keeps failing, reload the page.`;
}

/**
 * POST the form to S3: every presigned field first, unchanged, then the file last (S3 ignores fields after
 * `file`). XMLHttpRequest, not fetch, because only it reports upload progress.
 * @param {{url: string, fields: Record<string, string>, file: File, onProgress?: (fraction: number) => void,
 *          signal?: AbortSignal}} options
 */
export function postToStorage({ url, fields, file, onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", file);

    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new UploadError(storageMessage(xhr)));
    });
    xhr.addEventListener("error", () =>
      reject(new UploadError("The upload was interrupted. Check your internet connection, then try again.")),
    );
    xhr.addEventListener("abort", () => reject(new DOMException("Upload cancelled", "AbortError")));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}
