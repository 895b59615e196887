#!/usr/bin/env node
// Drive the real @clerk/clerk-js, headless in Node, against a Clerk-style
// Frontend API (the reference origin or the session-minter edge in front of it).
//
// It loads clerk-js the way a native app (Expo) does: `standardBrowser: false`,
// `_is_native=1` on every request and the client credential carried in the
// `authorization` request/response header. A cookie-jar mode is available too.
//
// Output: one JSON object per line on stdout.
//   {"event":"step", "step":..., "ok":true|false, ...}   one per step
//   {"event":"request", ...} / {"event":"response", ...}  with --trace
//   {"event":"done", "ok":true|false}                    last line
// Exit status: 0 when every step succeeded (or failed as allowed by
// --allow-errors), 1 on a step failure, 2 on bad usage, 3 on the overall timeout.
//
// Usage:
//   node clerk_flow.mjs --base-url http://127.0.0.1:8080 \
//     --identifier alice@example.com --password correct-horse \
//     [--steps load,sign_in,get_token,get_token_skip_cache,refresh] [--trace]
// Every option also reads an environment variable: --base-url = CLERK_FLOW_BASE_URL, etc.
//
// Steps (comma separated, run in order):
//   load                    new Clerk(pk, {proxyUrl}) + clerk.load({standardBrowser:false})
//   sign_in                 client.signIn.create({strategy:'password', identifier, password})
//                           + setActive({session: createdSessionId})
//   get_token               session.getToken()            (cache first)
//   get_token_skip_cache    session.getToken({skipCache: true})  (force_origin=true)
//   refresh                 session.clearCache() + session.getToken(): a network
//                           refresh that posts the previous token (`token`)
//   template:NAME           session.getToken({template: NAME})
//   org:ID                  setActive({organization: ID}); `org:` selects the personal workspace
//   reload_client           clerk.client.reload()  (GET /v1/client)
//   sleep:SECONDS           wait (e.g. to let a token expire)
//   sign_out                clerk.signOut()  (POST /v1/client/sessions?_method=DELETE)
//   pause[:LABEL]           print {"event":"paused","label":...} and wait for one line on
//                           stdin (EOF continues too): lets a driver change the world
//                           (e.g. fail the origin) between steps

import { Buffer } from 'node:buffer';
import process from 'node:process';
import { setTimeout as delay } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const OPTIONS = {
  'base-url': { type: 'string', env: 'CLERK_FLOW_BASE_URL' },
  identifier: { type: 'string', env: 'CLERK_FLOW_IDENTIFIER' },
  password: { type: 'string', env: 'CLERK_FLOW_PASSWORD' },
  steps: { type: 'string', env: 'CLERK_FLOW_STEPS', default: 'load,sign_in,get_token,get_token_skip_cache,refresh' },
  'publishable-key': { type: 'string', env: 'CLERK_FLOW_PUBLISHABLE_KEY' },
  'frontend-api': { type: 'string', env: 'CLERK_FLOW_FRONTEND_API', default: 'clerk.example.test' },
  mode: { type: 'string', env: 'CLERK_FLOW_MODE', default: 'native' },
  origin: { type: 'string', env: 'CLERK_FLOW_ORIGIN', default: 'http://localhost:3000' },
  timeout: { type: 'string', env: 'CLERK_FLOW_TIMEOUT', default: '30' },
  'step-timeout': { type: 'string', env: 'CLERK_FLOW_STEP_TIMEOUT', default: '15' },
  trace: { type: 'boolean', env: 'CLERK_FLOW_TRACE', default: false },
  'tab-state': { type: 'string', env: 'CLERK_FLOW_TAB_STATE', default: 'none' },
  'allow-errors': { type: 'boolean', env: 'CLERK_FLOW_ALLOW_ERRORS', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(code, message) {
  process.stderr.write(`clerk_flow: ${message}\n`);
  emit({ event: 'done', ok: false, error: message });
  process.exit(code);
}

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      options: Object.fromEntries(
        Object.entries(OPTIONS).map(([k, v]) => [k, { type: v.type, ...(v.short ? { short: v.short } : {}) }]),
      ),
      allowPositionals: false,
    }).values;
  } catch (e) {
    fail(2, e.message);
  }
  const opts = {};
  for (const [name, spec] of Object.entries(OPTIONS)) {
    let value = parsed[name];
    if (value === undefined && spec.env && process.env[spec.env] !== undefined) {
      value = spec.type === 'boolean' ? ['1', 'true', 'yes'].includes(process.env[spec.env].toLowerCase()) : process.env[spec.env];
    }
    opts[name] = value === undefined ? spec.default : value;
  }
  if (opts.help) {
    process.stdout.write(
      `usage: node clerk_flow.mjs --base-url URL [--identifier ID --password PW] [--steps a,b,c]\n` +
        `options: ${Object.entries(OPTIONS)
          .map(([k, v]) => `--${k}${v.env ? ` (${v.env})` : ''}`)
          .join(', ')}\n`,
    );
    process.exit(0);
  }
  if (!opts['base-url']) fail(2, 'missing --base-url (or CLERK_FLOW_BASE_URL)');
  try {
    new URL(opts['base-url']);
  } catch {
    fail(2, `--base-url is not an absolute URL: ${opts['base-url']}`);
  }
  if (!['none', 'focused', 'visible', 'hidden'].includes(opts['tab-state'])) {
    fail(2, `--tab-state must be none, focused, visible or hidden, not ${opts['tab-state']}`);
  }
  if (!['native', 'cookie'].includes(opts.mode)) fail(2, `--mode must be native or cookie, not ${opts.mode}`);
  for (const k of ['timeout', 'step-timeout']) {
    const n = Number(opts[k]);
    if (!(n > 0)) fail(2, `--${k} must be a positive number of seconds`);
    opts[k] = n;
  }
  opts.steps = opts.steps
    .split(',')
    .map(s => s.trim())
    .filter(Boolean);
  return opts;
}

const opts = parseOptions();

// Overall bound: whatever happens, the process ends.
const overall = setTimeout(() => fail(3, `overall timeout of ${opts.timeout}s reached`), opts.timeout * 1000);

// ---------------------------------------------------------------------------
// Minimal browser-ish globals. clerk-js treats "no window" or "no navigator"
// as offline and then refuses to fetch tokens, so both are required.
// ---------------------------------------------------------------------------
// --origin '' sends no Origin header; the page URL then defaults to http://localhost/.
const pageUrl = new URL(opts.origin || 'http://localhost/');
const location = {
  href: pageUrl.href,
  origin: pageUrl.origin,
  protocol: pageUrl.protocol,
  host: pageUrl.host,
  hostname: pageUrl.hostname,
  port: pageUrl.port,
  pathname: pageUrl.pathname,
  search: pageUrl.search,
  hash: pageUrl.hash,
  assign() {},
  replace() {},
  reload() {},
  toString() {
    return this.href;
  },
};
const navigatorShim = { onLine: true, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) clerk-flow/1.0', language: 'en-US', languages: ['en-US'], webdriver: false };
Object.defineProperty(globalThis, 'navigator', { value: navigatorShim, configurable: true, writable: true });
globalThis.window = globalThis;
globalThis.location = location;
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
// Cross-tab sync is meaningless here and a live BroadcastChannel would hold the event loop open.
globalThis.BroadcastChannel = undefined;
// No `localStorage`: clerk-js guards every use of it.
// `document` is only defined for --tab-state: clerk-js then posts `tab_state`
// (focused/visible/hidden) and skips its background refresh in a hidden tab.
// Without it no `tab_state` is sent and the background refresh always runs.
if (opts['tab-state'] !== 'none') {
  const state = opts['tab-state'];
  globalThis.document = {
    hasFocus: () => state === 'focused',
    visibilityState: state === 'hidden' ? 'hidden' : 'visible',
    hidden: state === 'hidden',
    cookie: '',
    readyState: 'complete',
    addEventListener() {},
    removeEventListener() {},
    querySelector: () => null,
    getElementsByTagName: () => [],
  };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------
function publishableKey() {
  if (opts['publishable-key']) return opts['publishable-key'];
  // pk_live_ + unpadded base64("<frontend api host>$"). With proxyUrl set, the
  // host is only used to build email addresses; requests go to proxyUrl.
  return `pk_live_${Buffer.from(`${opts['frontend-api']}$`).toString('base64').replace(/=+$/, '')}`;
}

function decodeJwt(raw) {
  if (typeof raw !== 'string' || raw.split('.').length !== 3) return null;
  const [h, c] = raw.split('.');
  try {
    return {
      header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(c, 'base64url').toString('utf8')),
    };
  } catch {
    return null;
  }
}

function tokenInfo(raw) {
  const d = decodeJwt(raw);
  return { token: raw ?? null, header: d?.header ?? null, claims: d?.claims ?? null };
}

let clerkErrors = null; // { isClerkAPIResponseError, isClerkRuntimeError } once the module is loaded

function describeError(e) {
  if (!e || typeof e !== 'object') return { message: String(e) };
  let kind = 'error';
  if (clerkErrors?.isClerkAPIResponseError(e)) kind = 'clerk_api_response_error';
  else if (clerkErrors?.isClerkRuntimeError(e)) kind = 'clerk_runtime_error';
  else if (e.code === 'step_timeout') kind = 'step_timeout';
  const out = { kind, name: e.name, message: e.message };
  if (e.code !== undefined) out.code = e.code;
  if (e.status !== undefined) out.status = e.status;
  if (e.clerkTraceId) out.trace_id = e.clerkTraceId;
  if (Array.isArray(e.errors)) {
    out.errors = e.errors.map(x => ({ code: x.code, message: x.message, long_message: x.longMessage, meta: x.meta }));
  }
  if (e.retryAfter !== undefined) out.retry_after = e.retryAfter;
  return out;
}

function formToObject(body) {
  if (typeof body !== 'string') return body == null ? null : '<non-string body>';
  return Object.fromEntries(new URLSearchParams(body));
}

// ---------------------------------------------------------------------------
// Client credential transport
// ---------------------------------------------------------------------------
let clientJwt = ''; // native mode: the `authorization` header value
const cookieJar = new Map(); // cookie mode

function installTransport(clerk) {
  let seq = 0;
  clerk.__internal_onBeforeRequest(async requestInit => {
    requestInit.__flowSeq = ++seq;
    const headers = requestInit.headers;
    if (opts.origin) headers.set('origin', pageUrl.origin);
    if (opts.mode === 'native') {
      requestInit.credentials = 'omit';
      requestInit.url?.searchParams.append('_is_native', '1');
      headers.set('authorization', clientJwt || '');
    } else if (cookieJar.size) {
      headers.set('cookie', [...cookieJar].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    if (opts.trace) {
      const url = requestInit.url;
      emit({
        event: 'request',
        seq: requestInit.__flowSeq,
        // clerk-js sends every non-GET as POST with the real verb in `_method`.
        method: (requestInit.method || 'GET') === 'GET' ? 'GET' : 'POST',
        path: url?.pathname,
        query: url ? Object.fromEntries(url.searchParams) : null,
        form: formToObject(requestInit.body),
        authorization: opts.mode === 'native' ? headers.get('authorization') : undefined,
      });
    }
  });
  clerk.__internal_onAfterResponse(async (requestInit, response) => {
    if (opts.mode === 'native') {
      const auth = response.headers.get('authorization');
      if (auth) clientJwt = auth;
    } else {
      for (const line of response.headers.getSetCookie?.() ?? []) {
        const [pair, ...attrs] = line.split(';');
        const i = pair.indexOf('=');
        if (i < 0) continue;
        const name = pair.slice(0, i).trim();
        const value = pair.slice(i + 1).trim();
        const expired = attrs.some(a => /^\s*max-age\s*=\s*(0|-)/i.test(a)) || value === '';
        if (expired) cookieJar.delete(name);
        else cookieJar.set(name, value);
      }
    }
    if (opts.trace) {
      emit({
        event: 'response',
        seq: requestInit.__flowSeq,
        status: response.status,
        path: requestInit.url?.pathname,
        error_codes: (response.payload?.errors || []).map(e => e.code),
        jwt: response.payload?.object === 'token' ? response.payload.jwt : undefined,
      });
    }
  });
}

// ---------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------
let clerk = null;

function requireSession() {
  if (!clerk?.session) throw new Error('no active session (run load and sign_in first)');
  return clerk.session;
}

async function stepLoad() {
  let mod;
  try {
    mod = await import('@clerk/clerk-js');
  } catch (e) {
    throw new Error(`cannot import @clerk/clerk-js (run \`npm ci\` in tests/js): ${e?.message || e}`);
  }
  const { Clerk } = mod;
  clerkErrors = { isClerkAPIResponseError: mod.isClerkAPIResponseError, isClerkRuntimeError: mod.isClerkRuntimeError };
  clerk = new Clerk(publishableKey(), { proxyUrl: opts['base-url'] });
  installTransport(clerk);
  await clerk.load({
    standardBrowser: false,
    telemetry: false,
    experimental: { runtimeEnvironment: 'headless' },
  });
  return {
    version: clerk.version,
    status: clerk.status,
    session_minter: Boolean(clerk.__internal_environment?.authConfig?.sessionMinter),
    client_id: clerk.client?.id ?? null,
    session_id: clerk.session?.id ?? null,
  };
}

async function stepSignIn() {
  if (!clerk) throw new Error('run load first');
  if (!opts.identifier || !opts.password) throw new Error('sign_in needs --identifier and --password');
  const signIn = await clerk.client.signIn.create({
    strategy: 'password',
    identifier: opts.identifier,
    password: opts.password,
  });
  if (signIn.status !== 'complete') {
    throw new Error(`sign-in status is ${signIn.status}, expected complete`);
  }
  await clerk.setActive({ session: signIn.createdSessionId });
  return {
    status: signIn.status,
    session_id: clerk.session?.id ?? null,
    user_id: clerk.user?.id ?? null,
    organization_id: clerk.session?.lastActiveOrganizationId ?? null,
    last_active_token: tokenInfo(clerk.session?.lastActiveToken?.getRawString() || null),
  };
}

async function stepGetToken(options) {
  const session = requireSession();
  const raw = await session.getToken(options);
  if (!raw) throw new Error('getToken returned no token');
  return tokenInfo(raw);
}

async function stepRefresh() {
  const session = requireSession();
  session.clearCache();
  return stepGetToken();
}

async function stepOrg(orgId) {
  requireSession();
  await clerk.setActive({ organization: orgId || null });
  return { organization_id: clerk.session?.lastActiveOrganizationId ?? null };
}

async function stepReloadClient() {
  if (!clerk?.client) throw new Error('run load first');
  await clerk.client.reload();
  return { client_id: clerk.client.id ?? null, session_id: clerk.session?.id ?? null };
}

async function stepSignOut() {
  if (!clerk) throw new Error('run load first');
  await clerk.signOut();
  return { session_id: clerk.session?.id ?? null };
}

// stdin lines, consumed by `pause` steps
let stdinLines = null;
const stdinWaiters = [];
let stdinClosed = false;

function nextStdinLine() {
  if (!stdinLines) {
    stdinLines = [];
    const rl = createInterface({ input: process.stdin });
    rl.on('line', line => {
      const waiter = stdinWaiters.shift();
      if (waiter) waiter(line);
      else stdinLines.push(line);
    });
    rl.on('close', () => {
      stdinClosed = true;
      while (stdinWaiters.length) stdinWaiters.shift()(null);
    });
  }
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  if (stdinClosed) return Promise.resolve(null);
  return new Promise(resolve => stdinWaiters.push(resolve));
}

function resolveStep(spec) {
  const [name, ...rest] = spec.split(':');
  const arg = rest.join(':');
  switch (name) {
    case 'load':
      return stepLoad;
    case 'sign_in':
      return stepSignIn;
    case 'get_token':
      return () => stepGetToken();
    case 'get_token_skip_cache':
      return () => stepGetToken({ skipCache: true });
    case 'refresh':
      return stepRefresh;
    case 'template':
      if (!arg) break;
      return () => stepGetToken({ template: arg });
    case 'org':
      return () => stepOrg(arg);
    case 'reload_client':
      return stepReloadClient;
    case 'sleep': {
      const s = Number(arg);
      if (!(s >= 0)) break;
      return async () => {
        await delay(s * 1000);
        return { slept: s };
      };
    }
    case 'sign_out':
      return stepSignOut;
    case 'pause':
      return async () => {
        emit({ event: 'paused', label: arg || null });
        const line = await nextStdinLine();
        return { resumed_by: line === null ? 'eof' : 'line', line };
      };
    default:
      break;
  }
  return null;
}

async function main() {
  const plan = opts.steps.map(spec => {
    const fn = resolveStep(spec);
    if (!fn) fail(2, `unknown or malformed step: ${spec}`);
    return [spec, fn];
  });

  let allOk = true;
  for (const [spec, fn] of plan) {
    const started = Date.now();
    let timer;
    try {
      const bounded = spec.startsWith('sleep:') || spec === 'pause' || spec.startsWith('pause:')
        ? fn()
        : Promise.race([
            fn(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(Object.assign(new Error(`step timed out after ${opts['step-timeout']}s`), { code: 'step_timeout' })),
                opts['step-timeout'] * 1000,
              );
            }),
          ]);
      const result = await bounded;
      emit({ event: 'step', step: spec, ok: true, ms: Date.now() - started, ...result });
    } catch (e) {
      allOk = false;
      emit({ event: 'step', step: spec, ok: false, ms: Date.now() - started, error: describeError(e) });
      if (!opts['allow-errors']) {
        process.stderr.write(`clerk_flow: step ${spec} failed: ${e?.stack || e}\n`);
        break;
      }
    } finally {
      clearTimeout(timer);
    }
  }
  clearTimeout(overall);
  emit({ event: 'done', ok: allOk });
  // clerk-js keeps timers (token refresh, pollers); exit explicitly.
  process.exit(allOk || opts['allow-errors'] ? 0 : 1);
}

process.on('unhandledRejection', e => {
  process.stderr.write(`clerk_flow: unhandled rejection: ${e?.stack || e}\n`);
});

main().catch(e => fail(1, `unexpected error: ${e?.stack || e}`));
