import { credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluator, merge, optimizer, policy } from './index.js';

type Definition = Record<string, { path: string; requestStream: boolean; responseStream: boolean }>;

// [fully qualified service name, service definition, RPCs with a server stream, all RPCs]
const SERVICES: [string, Definition, string[], string[]][] = [
  [
    'hm3.v1.TensorMergeService',
    merge.TensorMergeServiceService,
    ['Merge'],
    ['RegisterModel', 'Validate', 'Merge', 'ListMethods'],
  ],
  [
    'hm3.v1.PolicyService',
    policy.PolicyServiceService,
    ['Train'],
    ['CreatePolicy', 'ProposePaths', 'ReportRewards', 'Train', 'ExportPolicy'],
  ],
  ['hm3.v1.EvaluatorService', evaluator.EvaluatorServiceService, ['Evaluate'], ['Evaluate', 'ListTasks']],
  [
    'hm3.v1.ParetoOptimizerService',
    optimizer.ParetoOptimizerServiceService,
    ['WatchSearch'],
    ['StartSearch', 'WatchSearch', 'GetFront', 'Recommend', 'CancelSearch', 'ListSearches'],
  ],
];

describe('generated grpc-js service definitions', () => {
  it.each(SERVICES)(
    '%s has every RPC with its path and streaming flags',
    (service, definition, streaming, rpcs) => {
      const methods = Object.values(definition);
      expect(methods.map((m) => m.path).sort()).toEqual(rpcs.map((rpc) => `/${service}/${rpc}`).sort());
      for (const method of methods) {
        const rpc = method.path.split('/').at(-1) ?? '';
        expect(method.requestStream, method.path).toBe(false);
        expect(method.responseStream, method.path).toBe(streaming.includes(rpc));
      }
    },
  );

  it('names the streaming RPCs as the contracts say', () => {
    expect(merge.TensorMergeServiceService.merge.path).toBe('/hm3.v1.TensorMergeService/Merge');
    expect(merge.TensorMergeServiceService.merge.responseStream).toBe(true);
    expect(policy.PolicyServiceService.train.responseStream).toBe(true);
    expect(evaluator.EvaluatorServiceService.evaluate.responseStream).toBe(true);
    expect(optimizer.ParetoOptimizerServiceService.watchSearch.responseStream).toBe(true);
    expect(optimizer.ParetoOptimizerServiceService.startSearch.responseStream).toBe(false);
  });
});

describe('TensorMergeService over a real grpc-js server on loopback', () => {
  const server = new Server();
  let client: merge.TensorMergeServiceClient;

  const implementation: merge.TensorMergeServiceServer = {
    registerModel: (_call, callback) => callback(null, merge.RegisterModelResponse.fromPartial({})),
    validate: (_call, callback) => callback(null, merge.ValidateResponse.fromPartial({ valid: true })),
    listMethods: (
      _call: ServerUnaryCall<merge.ListMethodsRequest, merge.ListMethodsResponse>,
      callback: sendUnaryData<merge.ListMethodsResponse>,
    ) =>
      callback(
        null,
        merge.ListMethodsResponse.fromPartial({
          methods: [
            {
              name: 'ties',
              requiresBase: true,
              minModels: 1,
              parameters: [{ name: 'density', defaultValue: { value: { $case: 'scalar', value: 1 } } }],
            },
          ],
        }),
      ),
    merge: (call: ServerWritableStream<merge.MergeRequest, merge.MergeResponse>) => {
      const total = 3;
      for (let done = 1; done <= total; done += 1) {
        call.write({
          event: {
            $case: 'progress',
            value: merge.MergeProgress.fromPartial({ tensorsDone: done, tensorsTotal: total }),
          },
        });
      }
      call.write({
        event: {
          $case: 'result',
          value: merge.MergeResult.fromPartial({
            artifactId: `merged-${call.request.recipe?.seed ?? 0n}`,
            uri: 'artifact://x',
          }),
        },
      });
      call.end();
    },
  };

  beforeAll(async () => {
    server.addService(merge.TensorMergeServiceService, implementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    client = new merge.TensorMergeServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    server.forceShutdown();
  });

  it('streams progress, then one result carrying the artifact id', async () => {
    const recipe = { method: 'ties', seed: 2n ** 62n, models: [], slices: [], parameters: {} };
    const messages: merge.MergeResponse[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = client.merge(merge.MergeRequest.fromPartial({ recipe }));
      stream.on('data', (message: merge.MergeResponse) => messages.push(message));
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    expect(messages.map((m) => m.event?.$case)).toEqual(['progress', 'progress', 'progress', 'result']);
    const last = messages.at(-1)?.event;
    expect(last?.$case === 'result' ? last.value.artifactId : undefined).toBe(`merged-${2n ** 62n}`);
  });

  it('answers a unary call', async () => {
    const response = await new Promise<merge.ListMethodsResponse>((resolve, reject) =>
      client.listMethods({}, (error, value) => (error ? reject(error) : resolve(value))),
    );
    expect(response.methods[0]?.name).toBe('ties');
    expect(response.methods[0]?.parameters[0]?.defaultValue?.value).toEqual({ $case: 'scalar', value: 1 });
  });
});
