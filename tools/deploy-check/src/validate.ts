// Runs the Go validator over overlays: kustomize build, strict decoding of built-in kinds, CRD
// schema validation of custom resources. Returns its printed report, the parsed report.json and
// each overlay's rendered resources.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UnavailableError } from '@hm3/errors';
import { CRDS_DIR } from './paths.js';

/** One rendered Kubernetes resource, as JSON. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** One validation error: the resource and the field. */
export interface Problem {
  overlay: string;
  kind: string;
  name: string;
  namespace?: string;
  field: string;
  message: string;
}

export interface OverlayReport {
  overlay: string;
  /** Validated resources per kind. */
  counts: Record<string, number>;
  problems: Problem[];
}

export interface ValidationRun {
  /** 0: all valid; 1: some resource invalid; 2: usage or kustomize build error. */
  status: number;
  /** What the validator printed (counts per kind, one ERROR line per problem). */
  output: string;
  reports: OverlayReport[];
  /** The rendered resources, by overlay folder name (`dev`, `gpu`). */
  rendered: Map<string, K8sObject[]>;
}

export interface ValidateOptions {
  binary: string;
  /** Overlay folders. */
  overlays: readonly string[];
  crdsDir?: string;
}

export function validateOverlays(options: ValidateOptions): ValidationRun {
  const out = mkdtempSync(join(tmpdir(), 'hm3-deploy-check-'));
  try {
    const result = spawnSync(
      options.binary,
      ['-crds', options.crdsDir ?? CRDS_DIR, '-out', out, ...options.overlays],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    if (result.error !== undefined) {
      throw new UnavailableError(`deploy-check: cannot run ${options.binary}: ${result.error.message}`, {
        binary: options.binary,
      });
    }
    const output = `${result.stdout}${result.stderr}`;
    const reportFile = join(out, 'report.json');
    const reports = existsSync(reportFile)
      ? (JSON.parse(readFileSync(reportFile, 'utf8')) as OverlayReport[])
      : [];
    const rendered = new Map<string, K8sObject[]>();
    for (const overlay of options.overlays) {
      const name = basename(overlay);
      const file = join(out, `${name}.json`);
      if (existsSync(file)) rendered.set(name, JSON.parse(readFileSync(file, 'utf8')) as K8sObject[]);
    }
    return { status: result.status ?? 1, output, reports, rendered };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
