// e2e.js: how long a write takes from submission to its end.
//
// Each iteration submits a job to one route, then polls the job's
// status_url (GET /v1/jobs/{id}, the 202's Location) until its state is
// terminal (succeeded, failed, dead, canceled) or E2E_TIMEOUT passes.
// Iterations start at a constant rate, so the queue sees a steady stream.
//
//   k6 run loadtest/k6/e2e.js
//   k6 run -e BASE_URL=https://gw.example.com -e API_KEY=agw_... \
//          -e RATE=50 -e DURATION=2m -e E2E_P99_MS=5000 loadtest/k6/e2e.js
//
// Metrics of its own:
//   job_e2e_duration     submit sent -> terminal state seen by polling (so it
//                        includes up to one POLL_MS of polling delay)
//   job_run_duration     the job's own created_at -> finished_at, as the
//                        gateway recorded it (no polling delay)
//   job_queue_wait       created_at -> started_at of the last attempt
//   job_succeeded        share of jobs that ended succeeded
//   job_timed_out        jobs still live after E2E_TIMEOUT
//
// Environment (all optional):
//   BASE_URL     the gateway (http://127.0.0.1:8080)
//   API_KEY      sent as Authorization: Bearer <API_KEY> when set
//   ROUTE        the route's path (/v1/work)
//   RATE         jobs submitted per second (200)
//   DURATION     how long to keep submitting (20s)
//   POLL_MS      pause between polls, in ms (25)
//   E2E_TIMEOUT  give up on a job after this long, in seconds (10)
//   E2E_P95_MS   threshold on job_e2e_duration p(95), in ms (250)
//   E2E_P99_MS   threshold on job_e2e_duration p(99), in ms (500)
//   P99_MS       threshold on the answer time of every request, in ms (100)
//   SUCCESS_RATE threshold on job_succeeded (0.99)
//   VUS          pre-allocated virtual users (50); MAX_VUS at most (1000)
//
// k6 exits non-zero when a threshold fails.

import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

import { API_KEY, BASE_URL, ROUTE, num, runID, writeHeaders } from './lib.js';

const RATE = num('RATE', 200);
const DURATION = __ENV.DURATION || '20s';
const POLL_MS = num('POLL_MS', 25);
const E2E_TIMEOUT = num('E2E_TIMEOUT', 10);
const E2E_P95_MS = num('E2E_P95_MS', 250);
const E2E_P99_MS = num('E2E_P99_MS', 500);
const P99_MS = num('P99_MS', 100);
const SUCCESS_RATE = num('SUCCESS_RATE', 0.99);
const VUS = num('VUS', 50);
const MAX_VUS = num('MAX_VUS', 1000);


const TERMINAL = { succeeded: true, failed: true, dead: true, canceled: true };

const e2eDuration = new Trend('job_e2e_duration', true);
const runDuration = new Trend('job_run_duration', true);
const queueWait = new Trend('job_queue_wait', true);
const succeeded = new Rate('job_succeeded');
const timedOut = new Counter('job_timed_out');

export const options = {
  scenarios: {
    e2e: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: VUS,
      maxVUs: MAX_VUS,
      // Jobs submitted at the very end may still be followed to their end.
      gracefulStop: `${Math.ceil(E2E_TIMEOUT) + 5}s`,
    },
  },
  thresholds: {
    job_e2e_duration: [`p(95)<${E2E_P95_MS}`, `p(99)<${E2E_P99_MS}`],
    job_succeeded: [`rate>=${SUCCESS_RATE}`],
    job_timed_out: ['count==0'],
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(99)<${P99_MS}`],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { run: runID() };
}

// ms reads an RFC 3339 time with up to nanoseconds as epoch milliseconds.
function ms(t) {
  if (typeof t !== 'string' || t === '') return NaN;
  return Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
}

function json(res) {
  try {
    return res.json();
  } catch (e) {
    return null;
  }
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  const headers = writeHeaders(`k6-e2e-${data.run}-${n}`);
  const auth = API_KEY ? { Authorization: headers.Authorization } : {};

  const start = Date.now();
  const res = http.post(`${BASE_URL}${ROUTE}`, JSON.stringify({ n, at: start }), {
    headers,
    tags: { name: `POST ${ROUTE}` },
  });
  const accepted = json(res);
  const statusURL = accepted && (accepted.status_url || res.headers.Location);
  const ok = check(res, {
    'submit: status is 202': (r) => r.status === 202,
    'submit: has status_url': () => typeof statusURL === 'string' && statusURL !== '',
  });
  if (!ok) {
    succeeded.add(false);
    return;
  }
  const url = /^https?:\/\//.test(statusURL) ? statusURL : `${BASE_URL}${statusURL}`;

  const deadline = start + E2E_TIMEOUT * 1000;
  let job = null;
  for (;;) {
    const r = http.get(url, { headers: auth, tags: { name: 'GET /v1/jobs/{id}' } });
    job = json(r);
    const polled = check(r, {
      'poll: status is 200': (x) => x.status === 200,
      'poll: has a state': () => job !== null && typeof job.state === 'string',
    });
    if (!polled) {
      succeeded.add(false);
      return;
    }
    if (TERMINAL[job.state]) break;
    if (Date.now() >= deadline) {
      timedOut.add(1);
      succeeded.add(false);
      return;
    }
    sleep(POLL_MS / 1000);
  }

  e2eDuration.add(Date.now() - start);
  succeeded.add(job.state === 'succeeded');
  const created = ms(job.created_at);
  const started = ms(job.started_at);
  const finished = ms(job.finished_at);
  if (Number.isFinite(created) && Number.isFinite(finished)) runDuration.add(finished - created);
  if (Number.isFinite(created) && Number.isFinite(started)) queueWait.add(started - created);
}
