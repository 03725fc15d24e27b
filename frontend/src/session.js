// The logged-in session: the bearer token survives reloads in localStorage; the user is fetched at start.

const KEY = "yoctogram.token";

export class Session {
  #token = null;
  #listeners = new Set();
  user = null;

  constructor() {
    try {
      this.#token = window.localStorage.getItem(KEY);
    } catch {
      this.#token = null; // storage disabled: the session lasts until the page closes
    }
  }

  get token() {
    return this.#token;
  }

  get loggedIn() {
    return Boolean(this.#token && this.user);
  }

  /** Call with (token, user) after a login, or with nothing to log out. */
  set(token = null, user = null) {
    this.#token = token;
    this.user = token ? user : null;
    try {
      if (token) window.localStorage.setItem(KEY, token);
      else window.localStorage.removeItem(KEY);
    } catch {
      // storage disabled: keep the session in memory only
    }
    for (const listener of this.#listeners) listener(this);
  }

  clear() {
    this.set();
  }

  onChange(listener) {
    this.#listeners.add(listener);
  }

  /** Whether this user id is the logged-in user. */
  isMe(userId) {
    return Boolean(this.user && userId && this.user.id === userId);
  }
}
