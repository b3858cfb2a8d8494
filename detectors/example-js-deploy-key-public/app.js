// Example detector in JavaScript (componentize-js): a repository made public soon after a
// deploy key was added to it. Urgent when the key can push (`read_only` false), needs
// review otherwise. Built by scripts/build-detectors.sh into
// target/wasm32-wasip2/release/example_js_deploy_key_public.wasm against the same WIT as
// the Rust and Python detectors (wit/since_v0.1.0).
//
// WIT values in JavaScript: records are objects with camelCase fields, enums are strings,
// variants are `{ tag, val }`, s64/u64 are BigInt (event times), an option is `undefined`
// or the value. For `result<list<finding>, analyze-error>`, returning the list is `ok`;
// whatever `analyze` throws is `err`, read as the analyze-error record: throw
// `{ message }` (an `Error` works too, by its `message`). The host counts either as a
// failed call.

import { now } from 'plumbline:detector/clock@0.1.0';
import { get } from 'plumbline:detector/config@0.1.0';
import { log } from 'plumbline:detector/log@0.1.0';

const SIGNAL = 'repo.public_after_deploy_key';
const NANOS_PER_MINUTE = 60_000_000_000n;
const TITLE_MAX = 200;

export function info() {
  return {
    name: 'example.js-deploy-key-then-public',
    version: '0.1.0',
    description: 'Repository made public soon after a deploy key was added; urgent when the key can push',
    sources: [],
    actions: ['deploy_key.created', 'repo.visibility.changed'],
    signals: [SIGNAL],
    config: [
      {
        name: 'window_minutes',
        defaultValue: '60',
        description: 'How soon after a deploy key was added a change to public counts',
      },
    ],
    // The story is told on the repository: one alert per repository, not one per actor too.
    views: ['system'],
  };
}

export function analyze(trajectory) {
  const window = wholeNumber('window_minutes') * NANOS_PER_MINUTE;

  // Every change to public is judged, each with the latest deploy key added to the same
  // system before it: a harmless change (to private, to internal) or an older key hides
  // nothing (the Rust SDK's `preceded_by`, sdk/README.md, works the same way).
  const latestKey = new Map();
  const findings = [];
  for (const event of trajectory.events) {
    if (event.action === 'repo.visibility.changed' && madePublic(event)) {
      const key = latestKey.get(event.system);
      if (key !== undefined && event.time - key.time <= window) {
        findings.push(finding(key, event));
      }
    }
    if (event.action === 'deploy_key.created') {
      latestKey.set(event.system, event);
    }
  }
  if (findings.length > 0) {
    log('info', `${findings.length} change(s) to public soon after a deploy key, at ${now()}`);
  }
  return findings;
}

function finding(key, change) {
  const canPush = attrBool(key, 'read_only') === false;
  const keyName = attrText(key, 'key.title') ?? (key.resource || key.id);
  const minutes = (change.time - key.time) / NANOS_PER_MINUTE;
  const access = canPush ? 'write deploy key' : 'deploy key';
  return {
    signal: SIGNAL,
    severity: canPush ? 3 : 2,
    score: canPush ? 0.9 : 0.6,
    title: clip(
      `${change.actor.id} made ${change.system} public ${minutes} min after ${access} ${keyName} was added`,
    ),
    evidence: [key.id, change.id],
    nextStep: canPush
      ? `Make ${change.system} private again if that was not intended, and remove deploy key ${keyName} (it can push)`
      : `Ask ${change.actor.id} why ${change.system} went public, and who holds deploy key ${keyName}`,
  };
}

// The host supplies declared defaults, so a declared key always has a value.
function wholeNumber(key) {
  const value = get(key);
  if (value === undefined) {
    throw { message: `config key \`${key}\` is not declared` };
  }
  if (!/^[0-9]+$/.test(value.trim())) {
    throw { message: `config key \`${key}\` is not a whole number: ${value}` };
  }
  return BigInt(value.trim());
}

// GitHub sets `visibility` to `public` or `private`; GitLab's audit events to the new level
// in lower case (`public`, `internal`, `private`).
function madePublic(event) {
  return attrText(event, 'visibility')?.toLowerCase() === 'public';
}

function attr(event, key) {
  return event.attributes.find((a) => a.key === key)?.value;
}

function attrText(event, key) {
  const v = attr(event, key);
  return v?.tag === 'text' ? v.val : undefined;
}

function attrBool(event, key) {
  const v = attr(event, key);
  if (v?.tag === 'boolean') return v.val;
  if (v?.tag === 'text' && (v.val === 'true' || v.val === 'false')) return v.val === 'true';
  return undefined;
}

// Titles are counted in characters (code points), at most 200.
function clip(text) {
  const chars = Array.from(text);
  return chars.length <= TITLE_MAX ? text : `${chars.slice(0, TITLE_MAX - 1).join('')}…`;
}
