/** The web console's login page: one password field, posted to /login. */

const escapeHtml = (text: string): string =>
  text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;")

const styles = `
  body { font-family: system-ui, sans-serif; background: #1d2125; color: #e8eaed;
         display: flex; align-items: center; justify-content: center; height: 100vh; margin: 0; }
  form { background: #2b3035; padding: 2rem; border-radius: 8px; min-width: 18rem; }
  h1 { font-size: 1.2rem; margin: 0 0 1rem; }
  label { display: block; margin-bottom: .4rem; }
  input[type=password] { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
  button { margin-top: 1rem; padding: .5rem 1.2rem; font-size: 1rem; }
  .error { color: #ff8a80; margin: 0 0 1rem; }
`

/**
 * Renders the login page. `next` is where a successful login leads (a path on this server);
 * `error` is shown above the form.
 */
export const loginPage = (machineName: string, next: string, error?: string): string =>
  [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(machineName)}: console login</title>`,
    `<style>${styles}</style>`,
    "</head>",
    "<body>",
    '<form method="post" action="/login">',
    `<h1>Console of ${escapeHtml(machineName)}</h1>`,
    error === undefined ? "" : `<p class="error" role="alert">${escapeHtml(error)}</p>`,
    '<label for="password">Password (VNC_PASSWORD)</label>',
    '<input type="password" id="password" name="password" autocomplete="current-password" ' +
      "autofocus required>",
    `<input type="hidden" name="next" value="${escapeHtml(next)}">`,
    '<button type="submit">Log in</button>',
    "</form>",
    "</body>",
    "</html>",
    ""
  ].join("\n")

/**
 * The page to go to after login: a path on this server, never another site. Anything else
 * (an absolute URL, `//host`, a backslash trick) becomes the console page.
 */
export const safeNext = (next: string | null, fallback: string): string =>
  next !== null && /^\/(?![/\\])[^\s\\]*$/.test(next) ? next : fallback
