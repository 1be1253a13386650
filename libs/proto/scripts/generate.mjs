// `npm run generate -w @hm3/proto`: regenerates libs/proto/src/gen from proto/ (the only way that folder
// changes; never edit it by hand).
//
// 1. `buf generate` (buf.gen.yaml at the repository root: ts-proto) into a scratch folder.
// 2. The Kafka topic constants, src/gen/topics.ts, from the same protos: `buf build` gives the image as
//    JSON; enum hm3.v1.Topic's `topic_name` options are the names, and the `topic` option of each
//    Envelope payload field says where an envelope with that payload goes. The names live only in proto.
// 3. Copies into libs/proto/src/gen only the files whose bytes changed and deletes the ones no longer
//    generated, so an unchanged tree is not touched (builds running at the same time see no gap, and
//    incremental tsc stays incremental). The output is deterministic: run it twice, nothing changes.
//
// Plain Node (no dependencies beyond the buf binary and ts-proto plugin in node_modules).
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const genDir = join(repoRoot, 'libs', 'proto', 'src', 'gen');
export const bufBin = join(repoRoot, 'node_modules', '.bin', 'buf');

const TOPIC_ENUM = 'Topic';
const TOPIC_NAME_OPTION = '[hm3.v1.topic_name]';
const PAYLOAD_TOPIC_OPTION = '[hm3.v1.topic]';
const EVENTS_FILE = 'hm3/v1/events.proto';

/** Runs buf from the repository root; returns its stdout. */
export function buf(args) {
  return execFileSync(bufBin, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** Regenerates src/gen; returns the paths (relative to src/gen) that were written or deleted. */
export function generate() {
  const scratch = mkdtempSync(join(tmpdir(), 'hm3-proto-gen-'));
  try {
    buf(['generate', '--template', 'buf.gen.yaml', '--output', scratch]);
    const scratchGen = join(scratch, relative(repoRoot, genDir));
    const image = JSON.parse(buf(['build', '--output', '-#format=json']));
    writeFileSync(join(scratchGen, 'topics.ts'), renderTopicsModule(readTopics(image)));
    return syncTree(scratchGen, genDir);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Reads the Topic enum and the Envelope payload options out of a buf image (JSON form). */
export function readTopics(image) {
  const file = (image.file ?? []).find((f) => f.name === EVENTS_FILE);
  if (!file) throw new Error(`${EVENTS_FILE} is not in the buf image`);
  const topicEnum = (file.enumType ?? []).find((e) => e.name === TOPIC_ENUM);
  if (!topicEnum) throw new Error(`${EVENTS_FILE} declares no enum ${TOPIC_ENUM}`);

  const topics = [];
  for (const value of topicEnum.value) {
    const name = value.options?.[TOPIC_NAME_OPTION];
    if ((value.number ?? 0) === 0) {
      if (name) throw new Error(`${value.name} is the zero value and must not name a topic`);
      continue;
    }
    if (!name) throw new Error(`${TOPIC_ENUM}.${value.name} has no (topic_name) option`);
    if (!value.name.startsWith('TOPIC_')) throw new Error(`${value.name} does not start with TOPIC_`);
    topics.push({ enumName: value.name, key: value.name.slice('TOPIC_'.length), number: value.number, name });
  }
  assertUnique(
    topics.map((t) => t.name),
    'topic name',
  );
  assertUnique(
    topics.map((t) => t.number),
    'Topic number',
  );

  const envelope = (file.messageType ?? []).find((m) => m.name === 'Envelope');
  if (!envelope) throw new Error(`${EVENTS_FILE} declares no message Envelope`);
  const payloadIndex = (envelope.oneofDecl ?? []).findIndex((o) => o.name === 'payload');
  if (payloadIndex < 0) throw new Error('Envelope has no oneof payload');
  const payloads = [];
  for (const field of envelope.field) {
    if (field.oneofIndex !== payloadIndex) continue;
    const enumName = field.options?.[PAYLOAD_TOPIC_OPTION];
    const topic = topics.find((t) => t.enumName === enumName);
    if (!topic)
      throw new Error(`Envelope.${field.name} has no valid (topic) option (got ${enumName ?? 'none'})`);
    payloads.push({
      field: field.name,
      jsonName: field.jsonName,
      message: field.typeName.replace(/^\./, ''),
      topic,
    });
  }
  assertUnique(
    payloads.map((p) => p.topic.name),
    'payload topic',
  );
  const unused = topics.filter((t) => !payloads.some((p) => p.topic === t));
  if (unused.length > 0)
    throw new Error(`topics without an Envelope payload: ${unused.map((t) => t.name).join(', ')}`);
  return { topics, payloads };
}

function assertUnique(values, what) {
  const seen = new Set();
  for (const value of values) {
    if (seen.has(value)) throw new Error(`duplicate ${what}: ${value}`);
    seen.add(value);
  }
}

/** The TypeScript source of src/gen/topics.ts. */
export function renderTopicsModule({ topics, payloads }) {
  const q = (s) => `'${s}'`;
  const lines = [
    '// Code generated by libs/proto/scripts/generate.mjs from proto/hm3/v1/events.proto. DO NOT EDIT.',
    '// The Kafka topic names are declared once, as the (topic_name) options of enum hm3.v1.Topic; the',
    '// (topic) option of each Envelope payload field says which topic an envelope with that payload goes to.',
    '// Record key: Envelope.candidateId (Envelope.searchId for round.completed and front.updated).',
    '',
    "import { Topic } from './hm3/v1/events.js';",
    "import type { Envelope } from './hm3/v1/events.js';",
    '',
    '/** The topic names, keyed by the Topic enum member. */',
    'export const TOPICS = {',
    ...topics.map((t) => `  ${t.key}: ${q(t.name)},`),
    '} as const;',
    '',
    '/** A Kafka topic name of the platform. */',
    'export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];',
    '',
    '/** Every topic name, in Topic enum order. */',
    'export const TOPIC_NAMES: readonly TopicName[] = [',
    ...topics.map((t) => `  TOPICS.${t.key},`),
    '];',
    '',
    '/** The name of each Topic enum value. */',
    'export const TOPIC_NAME_BY_TOPIC: Readonly<Record<Exclude<Topic, Topic.UNSPECIFIED | Topic.UNRECOGNIZED>, TopicName>> = {',
    ...topics.map((t) => `  [Topic.${t.key}]: TOPICS.${t.key},`),
    '};',
    '',
    '/** The $case of an Envelope payload. */',
    "export type PayloadCase = NonNullable<Envelope['payload']>['$case'];",
    '',
    '/** The topic an Envelope is published to, by its payload $case. */',
    'export const TOPIC_BY_PAYLOAD: Readonly<Record<PayloadCase, TopicName>> = {',
    ...payloads.map((p) => `  ${p.jsonName}: TOPICS.${p.topic.key},`),
    '};',
    '',
  ];
  return lines.join('\n');
}

function listFiles(dir, base = dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path, base));
    else out.push(relative(base, path));
  }
  return out.sort();
}

function removeEmptyDirs(dir, keep) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyDirs(join(dir, entry.name), false);
  }
  if (!keep && readdirSync(dir).length === 0) rmdirSync(dir);
}

/** Makes `to` hold exactly the files of `from`, writing only what differs. */
function syncTree(from, to) {
  const wanted = listFiles(from);
  const changed = [];
  for (const path of wanted) {
    const bytes = readFileSync(join(from, path));
    const target = join(to, path);
    if (existsSync(target) && readFileSync(target).equals(bytes)) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, bytes);
    changed.push(path);
  }
  const keep = new Set(wanted);
  for (const path of listFiles(to)) {
    if (keep.has(path)) continue;
    rmSync(join(to, path));
    changed.push(path);
  }
  if (existsSync(to)) removeEmptyDirs(to, true);
  return changed;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const changed = generate();
  console.log(
    changed.length === 0
      ? 'proto: libs/proto/src/gen is up to date'
      : `proto: regenerated ${changed.length} file(s) in libs/proto/src/gen: ${changed.join(', ')}`,
  );
}
