/*
 * Valerix order load: the ONE k6 script, run by `scripts/bench` on a laptop and by the chart's
 * k6 Job in Kubernetes. It only drives POST /api/orders (after one POST /api/session per VU in
 * setup()); whoever runs it turns chaos on
 * (scripts/bench writes the chaos files, in a cluster `valerix chaos --kubernetes ...`).
 *
 * Environment contract (every variable optional):
 *   BASE_URL    order service root                           default http://127.0.0.1:3000
 *   SCENARIO    normal | gremlin | schrodinger | mixed: names the run and picks the default
 *               thresholds below                              default normal
 *   VUS         virtual users: the closed model's concurrency, or the pre-allocated VUs
 *               when RATE is set                              default 32
 *   RATE        orders/s offered (open model, constant-arrival-rate); 0 = closed model, every
 *               VU orders again as soon as it has its answer   default 0
 *   MAX_VUS     the most VUs the open model may grow to (gremlin holds a VU ~2 s per delayed
 *               order)                                        default 4 x VUS
 *   DURATION    how long to drive, k6 syntax (60s, 2m)        default 60s
 *   PRODUCTS    comma-separated product ids ordered at random default SKU-001,SKU-002,SKU-004,SKU-005,SKU-007
 *   MAX_QTY     quantity per order is 1..MAX_QTY             default 3
 *   P99_MS      threshold on p99 of unaffected orders (answered 201/409)
 *                                                             default 100 (normal), 150 (chaos)
 *   MAX_MS      threshold on every response                  default 2200 (gremlin, mixed), none otherwise
 *   THRESHOLDS  "off" drops every threshold (pure measurement) default on
 *   IDEMPOTENCY "1" sends a fresh Idempotency-Key with every order, as the storefront does
 *               (scripts/growth: the keys' table must stay bounded too) default 0
 *   RECORD      "1" logs one JSON line per order to the console: {"id","s"(status),"ms","t"(epoch ms)};
 *               scripts/bench reads them via --console-output FILE --log-format raw
 *
 * Identity: setup() asks POST /api/session for one guest customer per VU (the most VUs the run
 * may use); each VU sends its own bearer token, as that many storefronts would.
 *
 * Outcomes: 201 confirmed, 202 pending_verification (the order was *affected* by chaos and is
 * finished asynchronously), 409 failed (insufficient stock), 503 refused with Retry-After before
 * anything was written (overloaded past the 2 s deadline). Anything else counts as an error.
 * Metrics: orders_confirmed/orders_affected/orders_rejected/orders_refused (counters), order_errors (rate),
 * order_ms{affected:yes|no} (trend of POST /api/orders latency).
 */
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';

const env = (name, fallback) => (__ENV[name] === undefined || __ENV[name] === '' ? fallback : __ENV[name]);

const BASE_URL = env('BASE_URL', 'http://127.0.0.1:3000').replace(/\/+$/, '');
const SCENARIO = env('SCENARIO', 'normal');
const VUS = parseInt(env('VUS', '32'), 10);
const RATE = parseFloat(env('RATE', '0'));
const MAX_VUS = parseInt(env('MAX_VUS', String(VUS * 4)), 10);
const DURATION = env('DURATION', '60s');
const PRODUCTS = env('PRODUCTS', 'SKU-001,SKU-002,SKU-004,SKU-005,SKU-007').split(',').map((p) => p.trim());
const MAX_QTY = parseInt(env('MAX_QTY', '3'), 10);
const RECORD = env('RECORD', '0') === '1';
const IDEMPOTENCY = env('IDEMPOTENCY', '0') === '1';
const CHAOS = SCENARIO !== 'normal';
const P99_MS = parseFloat(env('P99_MS', CHAOS ? '150' : '100'));
const MAX_MS = parseFloat(env('MAX_MS', SCENARIO === 'gremlin' || SCENARIO === 'mixed' ? '2200' : '0'));

const confirmed = new Counter('orders_confirmed');
const affected = new Counter('orders_affected');
const rejected = new Counter('orders_rejected');
const refused = new Counter('orders_refused');
const errors = new Rate('order_errors');
const orderMs = new Trend('order_ms', true);

function thresholds() {
  if (env('THRESHOLDS', 'on') === 'off') return {};
  const t = {
    order_errors: ['rate==0'],
    'order_ms{affected:no}': [`p(99)<=${P99_MS}`],
  };
  if (MAX_MS > 0) t.order_ms = [`max<=${MAX_MS}`];
  return t;
}

const load = RATE > 0
  ? { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
      preAllocatedVUs: VUS, maxVUs: Math.max(MAX_VUS, VUS) }
  : { executor: 'constant-vus', vus: VUS, duration: DURATION };

export const options = {
  scenarios: { [SCENARIO]: { ...load, gracefulStop: '10s' } },
  thresholds: thresholds(),
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
  tags: { scenario_name: SCENARIO },
};

const PARAMS = {
  tags: { name: 'POST /api/orders' },
  timeout: '10s',
  // 409 (out of stock) is a correct business answer, and 503 + Retry-After an honest refusal
  // (nothing written), not failed requests; scripts/bench reports each apart.
  responseCallback: http.expectedStatuses(201, 202, 409, 503),
};

export function setup() {
  const count = RATE > 0 ? Math.max(MAX_VUS, VUS) : VUS;
  const request = ['POST', `${BASE_URL}/api/session`, null,
    { responseType: 'text', tags: { name: 'POST /api/session' }, timeout: '10s' }];
  const tokens = [];
  for (let start = 0; start < count; start += 50) {
    const batch = Array.from({ length: Math.min(50, count - start) }, () => request);
    for (const res of http.batch(batch)) {
      if (res.status !== 201) throw new Error(`POST /api/session answered ${res.status}`);
      tokens.push(res.json('token'));
    }
  }
  return { tokens };
}

// The order API's Server-Timing: q = ms queued in the process before a handler took the
// request, a = ms in the handler, and each named step of the handler (save, reserve, settle)
// under its own name. The rest of the client's time was spent outside the process.
const TIMING_KEYS = { queue: 'q', app: 'a' };
function serverTiming(header) {
  const found = {};
  for (const part of (header || '').split(',')) {
    const match = /^\s*([A-Za-z][A-Za-z0-9_-]*);dur=([0-9.]+)\s*$/.exec(part);
    if (match) found[TIMING_KEYS[match[1]] || match[1]] = Number(match[2]);
  }
  return found;
}

export default function (data) {
  const token = data.tokens[(__VU - 1) % data.tokens.length];
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` };
  // Keys are scoped per customer and each VU has its own: VU and iteration make it unique.
  if (IDEMPOTENCY) headers['Idempotency-Key'] = `k6-${__VU}-${__ITER}-${Date.now()}`;
  const params = { ...PARAMS, headers };
  const body = JSON.stringify({
    productId: PRODUCTS[Math.floor(Math.random() * PRODUCTS.length)],
    quantity: 1 + Math.floor(Math.random() * MAX_QTY),
  });
  const res = http.post(`${BASE_URL}/api/orders`, body, params);
  const status = res.status;
  const ms = res.timings.duration;
  const isAffected = status === 202;
  errors.add(!(status === 201 || status === 202 || status === 409 || status === 503));
  if (status === 201) confirmed.add(1);
  else if (status === 202) affected.add(1);
  else if (status === 409) rejected.add(1);
  else if (status === 503) refused.add(1);
  orderMs.add(ms, { affected: isAffected ? 'yes' : 'no' });
  if (RECORD) {
    const location = res.headers.Location || '';
    const id = location.slice(location.lastIndexOf('/') + 1);
    console.log(JSON.stringify({ id, s: status, ms: Math.round(ms * 100) / 100, t: Date.now(),
                                 ...serverTiming(res.headers['Server-Timing']) }));
  }
}
