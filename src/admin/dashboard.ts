/** GET / : the dashboard page (placeholder until the full page lands). */
export function dashboardHtml(): string {
  return '<!doctype html><html><head><meta charset="utf-8"><title>canary-proxy</title></head><body><h1>canary-proxy</h1><p><a href="/api/v1/status">status</a></p></body></html>'
}
