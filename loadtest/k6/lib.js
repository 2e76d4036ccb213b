// lib.js: what the load scripts share: the environment they read, the
// headers of a write, and a run ID for fresh Idempotency-Keys.

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const API_KEY = __ENV.API_KEY || '';
export const ROUTE = __ENV.ROUTE || '/v1/work';

// num reads a number from the environment, or def when it is unset.
export function num(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v} is not a number`);
  return n;
}

// seconds turns a k6 duration such as 20s, 1m30s or 500ms into seconds.
export function seconds(d) {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  let matched = '';
  while ((m = re.exec(d)) !== null) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
    matched += m[0];
  }
  if (matched !== d) throw new Error(`${d} is not a duration such as 20s or 1m30s`);
  return total;
}

// runID names this run, so that its Idempotency-Keys are not replayed by
// the answers to an earlier run against the same gateway.
export function runID() {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
}

// writeHeaders are the headers of one write: JSON, its Idempotency-Key,
// and the API key when there is one.
export function writeHeaders(key) {
  const h = { 'Content-Type': 'application/json', 'Idempotency-Key': `"${key}"` };
  if (API_KEY) h.Authorization = `Bearer ${API_KEY}`;
  return h;
}
