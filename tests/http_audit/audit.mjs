// Runs graphql-http's server audits against AUDIT_URL and prints one JSON line per audit.
// The audits send no credentials of their own, and every request to /graphql needs a bearer
// token, so the fetch they use adds AUDIT_TOKEN to each request it makes.
import { serverAudits } from 'graphql-http';

const url = process.env.AUDIT_URL;
const token = process.env.AUDIT_TOKEN;
if (!url || !token) {
  console.error('set AUDIT_URL and AUDIT_TOKEN');
  process.exit(2);
}

function authenticatedFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

for (const audit of serverAudits({ url, fetchFn: authenticatedFetch })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    line.responseStatus = result.response.status;
    line.responseType = result.response.headers.get('content-type');
  }
  console.log(JSON.stringify(line));
}
