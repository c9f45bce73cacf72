import { html, type Html } from './html';

/**
 * The frame of every page of the authorization server. No scripts and no external
 * assets (the adapter's CSP forbids both): inline styles only, and forms that work
 * without JavaScript.
 */
export function layout(title: string, body: Html): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f6f8;color:#1b1f23}
main{max-width:30rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin:.9rem 0 .3rem;font-weight:600}
input[type=text],input[type=password],input[type=search]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #8a949e;border-radius:4px}
button{font-size:1rem;padding:.55rem 1.2rem;border-radius:4px;border:1px solid #1f5fa8;background:#1f6fc5;color:#fff;cursor:pointer;margin-top:1rem}
button.secondary{background:#fff;color:#1f5fa8}
.error{background:#fdecea;border:1px solid #e0a39c;padding:.6rem;border-radius:4px}
.scopes{list-style:none;padding:0}
.scopes li{margin:.4rem 0}
.scopes label{display:inline;font-weight:normal;margin:0}
.patients button{display:block;width:100%;text-align:left;background:#fff;color:#1b1f23;border-color:#c3cad1;margin-top:.5rem}
.muted{color:#5a6570;font-size:.9rem}
</style>
</head>
<body><main>
${body}
</main></body>
</html>
`.text;
}

/** The hidden fields every POST form carries: which pending authorization, and its CSRF token. */
export function requestFields(requestId: string, csrfToken: string): Html {
  return html`<input type="hidden" name="request" value="${requestId}"><input type="hidden" name="csrf_token" value="${csrfToken}">`;
}
