// Log in (username or email) and sign up.
import { h } from "../dom.js";
import { busy, field, messageSlot } from "./form.js";

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Where to go after logging in: ?next= when it is one of our own paths, else the feed. */
function nextPath(url) {
  const next = url.searchParams.get("next") ?? "";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/feed";
}

async function startSession(app, username, password) {
  const { access_token: token } = await app.api.login(username, password);
  app.session.set(token, null); // the token must be sent to ask who we are
  try {
    app.session.set(token, await app.api.me());
  } catch (error) {
    app.session.clear();
    throw error;
  }
}

function authPage(title, intro, form, footer) {
  return h(
    "section",
    { class: "panel auth", "aria-labelledby": "auth-title" },
    h("h1", { id: "auth-title", tabindex: "-1" }, title),
    h("p", { class: "muted" }, intro),
    form,
    h("p", { class: "auth-footer" }, footer),
  );
}

export function loginView(app, { url }) {
  if (app.session.loggedIn) return { redirect: nextPath(url) };
  const login = field({ label: "Username or email", name: "username", autocomplete: "username", required: true });
  const password = field({
    label: "Password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const message = messageSlot();
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Log in");
  const form = h("form", { novalidate: true }, message.node, login.node, password.node, submit);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    login.setError(login.input.value.trim() ? null : "Enter your username or email.");
    password.setError(password.input.value ? null : "Enter your password.");
    const invalid = form.querySelector("[aria-invalid=true]");
    if (invalid) {
      invalid.focus();
      return;
    }
    const done = busy(submit, "Logging in…");
    try {
      await startSession(app, login.input.value.trim(), password.input.value);
    } catch (error) {
      done();
      message.error(
        error.status === 401 ? "Wrong username, email or password. Check them and try again." : error.message,
      );
      password.input.select();
      password.input.focus();
      return;
    }
    app.flash(`Welcome back, ${app.session.user.username}!`);
    app.navigate(nextPath(url), { replace: true });
  });

  return {
    title: "Log in",
    node: authPage("Log in", "Good to see you again.", form, [
      "New to Yoctogram? ",
      h("a", { href: "/signup" }, "Create an account"),
    ]),
  };
}

export function signupView(app, { url }) {
  if (app.session.loggedIn) return { redirect: nextPath(url) };
  const username = field({
    label: "Username",
    name: "username",
    autocomplete: "username",
    hint: "3 to 32 letters, digits, “_”, “.” or “-”.",
    required: true,
    maxlength: 32,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const email = field({ label: "Email", name: "email", type: "email", autocomplete: "email", required: true });
  const password = field({
    label: "Password",
    name: "password",
    type: "password",
    autocomplete: "new-password",
    hint: "At least 8 characters.",
    required: true,
  });
  const fields = { username, email, password };
  const message = messageSlot();
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Create account");
  const form = h("form", { novalidate: true }, message.node, username.node, email.node, password.node, submit);

  function check() {
    const values = {
      username: username.input.value.trim(),
      email: email.input.value.trim(),
      password: password.input.value,
    };
    username.setError(USERNAME.test(values.username) ? null : "Use 3 to 32 letters, digits, “_”, “.” or “-”.");
    email.setError(EMAIL.test(values.email) ? null : "Enter an email address like name@example.com.");
    password.setError(values.password.length >= 8 ? null : "Use at least 8 characters.");
    return values;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    const values = check();
    const invalid = form.querySelector("[aria-invalid=true]");
    if (invalid) {
      invalid.focus();
      return;
    }
    const done = busy(submit, "Creating your account…");
    try {
      await app.api.register(values);
      await startSession(app, values.username, values.password);
    } catch (error) {
      done();
      let first = null;
      for (const [name, text] of Object.entries(error.fields ?? {})) {
        if (fields[name]) {
          fields[name].setError(text);
          first ??= fields[name].input;
        }
      }
      message.error(error.message);
      (first ?? username.input).focus();
      return;
    }
    app.flash(`Welcome to Yoctogram, ${app.session.user.username}! Share your first photo below.`);
    app.navigate(nextPath(url), { replace: true });
  });

  return {
    title: "Sign up",
    node: authPage("Create your account", "Share photos with everyone, or keep them to yourself.", form, [
      "Already have an account? ",
      h("a", { href: "/login" }, "Log in"),
    ]),
  };
}
