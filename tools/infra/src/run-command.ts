// Runs an install step (mvn, go, java) to completion, keeping its output for the error message.
import { spawn } from 'node:child_process';
import { FailedPreconditionError, UnavailableError } from '@hm3/errors';

export interface CommandResult {
  output: string;
}

export function runCommand(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; what: string },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(
          new FailedPreconditionError(
            `${options.what}: \`${command}\` is not installed (not on PATH)`,
            { command },
            error,
          ),
        );
      } else {
        reject(
          new UnavailableError(
            `${options.what}: could not run ${command}: ${error.message}`,
            { command },
            error,
          ),
        );
      }
    });
    child.on('close', (code, sig) => {
      const output = Buffer.concat(chunks).toString('utf8');
      if (code === 0) {
        resolve({ output });
        return;
      }
      const tail = output.split('\n').slice(-30).join('\n');
      reject(
        new UnavailableError(`${options.what} failed (${command} exited with ${code ?? sig}):\n${tail}`, {
          command,
          args,
          exitCode: code,
        }),
      );
    });
  });
}
