/** What a secret is replaced by wherever meshlimit shows a value it must not. */
export const REDACTED = '[REDACTED]';

/**
 * `text` fit for a log line or an error message: in every `scheme://user:password@` the password
 * becomes {@link REDACTED} (the user name stays, it helps tell deployments apart), and any query
 * string or fragment (which may carry an API key) is dropped unless `keepQuery` (an error that
 * is about the query must show it). Works on one URL, on a comma-separated list of them
 * (REDIS_URL) and on text that holds no URL (returned as is).
 */
export function redactUrl(text: string, options: { readonly keepQuery?: boolean } = {}): string {
  const redacted = text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/\s,]*)@/gi, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@`;
  });
  return options.keepQuery === true ? redacted : redacted.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s,?#]*)[?#][^\s,]*/gi, '$1');
}
