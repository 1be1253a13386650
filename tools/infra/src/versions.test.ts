import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KAFKA_VERSION } from './kafka.js';
import { FERRETDB_VERSION } from './ferretdb.js';

const read = (rel: string) => readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');

describe('pinned versions', () => {
  it('the pom declares the Kafka version the code runs (4.1.x)', () => {
    expect(read('../kafka/pom.xml')).toContain(`<kafka.version>${KAFKA_VERSION}</kafka.version>`);
    expect(KAFKA_VERSION).toMatch(/^4\.1\.\d+$/);
  });

  it('go.mod requires the FerretDB version the code names (v1.24.x)', () => {
    expect(read('../ferretdb/go.mod')).toMatch(
      new RegExp(`github.com/FerretDB/FerretDB ${FERRETDB_VERSION.replace(/\./g, '\\.')}\\n`),
    );
    expect(FERRETDB_VERSION).toMatch(/^v1\.24\.\d+$/);
  });
});
