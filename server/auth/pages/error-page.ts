import { html } from './html';
import { layout } from './layout';

/**
 * An error shown to the user instead of a redirect: when the client or its redirect_uri
 * cannot be trusted (RFC 6749 §4.1.2.1), or when a form fails its CSRF check.
 */
export function errorPage(title: string, message: string): string {
  return layout(title, html`<h1>${title}</h1><p class="error" role="alert">${message}</p>`);
}
