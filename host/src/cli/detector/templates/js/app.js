// @NAME@: a large data export soon after the same actor read a secret.
//
// Every large export is judged with the latest secret read before it, so a harmless small
// export in between hides nothing. Built with componentize-js against wit/detector.wit
// (README.md has the command). Times and volumes are BigInt (s64/u64 in the WIT).
import { get } from 'plumbline:detector/config@0.1.0';

const SIGNAL = '@SIGNAL@';
const NANOS_PER_MINUTE = 60_000_000_000n;

// The host answers every declared key: its configured value or the default in info().
function whole(key) {
  const value = get(key);
  if (value === undefined || !/^\d+$/.test(value)) {
    throw { message: `config key \`${key}\` is not a whole number: ${value}` };
  }
  return BigInt(value);
}

const rows = (event) => event.volume?.rows ?? 0n;

export function info() {
  return {
    name: '@NAME@',
    version: '0.1.0',
    description: 'Large data export soon after the same actor read a secret',
    sources: [],
    actions: ['secret.read', 'data.export'],
    signals: [SIGNAL],
    config: [
      { name: 'window_minutes', defaultValue: '60', description: 'How soon after the secret read an export counts' },
      { name: 'min_rows', defaultValue: '10000', description: 'Rows that make an export large' },
    ],
    views: ['actor'],
  };
}

export function analyze(trajectory) {
  const window = whole('window_minutes') * NANOS_PER_MINUTE;
  const minRows = whole('min_rows');
  const findings = [];
  let latestRead;
  for (const event of trajectory.events) {
    if (event.action === 'secret.read') {
      latestRead = event;
    } else if (event.action === 'data.export' && rows(event) >= minRows) {
      const read = latestRead;
      if (read === undefined || event.time - read.time > window) continue;
      const dest = event.destination ?? 'an unknown destination';
      const minutes = (event.time - read.time) / NANOS_PER_MINUTE;
      const title = `${event.actor.id} exported ${rows(event)} rows to ${dest} ${minutes} min after reading ${read.resource}`;
      findings.push({
        signal: SIGNAL,
        severity: 2,
        score: 0.7,
        title: title.slice(0, 200),
        evidence: [read.id, event.id],
        nextStep: 'Ask the actor why the export followed the secret read',
      });
    }
  }
  return findings;
}
