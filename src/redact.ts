/**
 * Secrets that ride along in URLs and in tool output (a repo URL with a token, git's error that
 * repeats it), taken out before the text reaches a terminal, a CI log, --json or a report.
 */
const REDACTED = '***';

/** a query or fragment parameter whose value is a credential */
const secretParameter = /([?&#;])([^=&#;]*(?:token|secret|passw|pwd|key|sig|auth|credential|session)[^=&#;]*)=([^&#;]*)/gi;

/**
 * The URL with its password, any token sent as an http(s) user name, and the values of
 * credential-like query parameters replaced by `***`. An ssh or git user name (git@) stays: it is
 * not a secret. scp-like addresses (git@host:path) and paths have no place for one and are returned as they are.
 */
export function redactUrl(url: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([\s\S]*)$/.exec(url);
  if (!match) return url;
  const [, scheme, authority, rest] = match as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  let shownAuthority = authority;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const user = colon >= 0 ? `${userinfo.slice(0, colon)}:${REDACTED}` : /^https?$/i.test(scheme) ? REDACTED : userinfo;
    shownAuthority = `${user}${authority.slice(at)}`;
  }
  return `${scheme}://${shownAuthority}${rest.replace(secretParameter, `$1$2=${REDACTED}`)}`;
}

const urlInText = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"<>`]+/g;
const authorizationHeader = /(authorization:\s*(?:basic|bearer|token|digest)\s+)\S+/gi;

/** Free text (an error message, stderr) with every URL passed through redactUrl and Authorization headers' credentials replaced. */
export function redactSecrets(text: string): string {
  return text.replace(urlInText, redactUrl).replace(authorizationHeader, `$1${REDACTED}`);
}
