// The runtime configuration: /config.json is written per environment, so one build serves every stage.

const DEFAULTS = { apiBase: "/api/v1", maxUploadBytes: 10 * 1024 * 1024, environment: "unknown" };

export class ConfigError extends Error {}

/** Fetch /config.json (never from cache: it differs per environment and may change between deploys). */
export async function loadConfig() {
  let response;
  try {
    response = await fetch("/config.json", { cache: "no-cache", headers: { Accept: "application/json" } });
  } catch {
    throw new ConfigError("Can't reach Yoctogram. Check your internet connection, then try again.");
  }
  if (!response.ok) {
    throw new ConfigError(`Yoctogram could not load its settings (error ${response.status}). Try again in a minute.`);
  }
  let data;
  try {
    data = await response.json();
  } catch {
    throw new ConfigError("Yoctogram's settings are unreadable. Try again in a minute; if it persists, tell us.");
  }
  const config = { ...DEFAULTS, ...data };
  config.apiBase = String(config.apiBase).replace(/\/+$/, "");
  config.maxUploadBytes = Number(config.maxUploadBytes) || DEFAULTS.maxUploadBytes;
  return Object.freeze(config);
}
