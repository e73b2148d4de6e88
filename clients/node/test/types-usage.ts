// Compiled (never run) by test/types.test.js: the published declarations type a caller's code.
import { MLServiceClient, MLServiceError, ROUTES, type CallOptions, type Health } from 'designer-ml-client';

const client = new MLServiceClient({ baseUrl: 'http://localhost:8001', apiKey: 'k', timeoutMs: 5_000, retries: 1 });

export async function usage(): Promise<void> {
  const health: Health = await client.health();
  const version: string = health.version;
  const options: CallOptions = { requestId: 'r', signal: AbortSignal.timeout(1_000) };
  try {
    await client.getStyleProfile('user_123', options);
  } catch (error) {
    if (error instanceof MLServiceError) {
      const status: number = error.status;
      const requestId: string | null = error.requestId;
      const retryable: boolean = error.retryable;
      void [status, requestId, retryable];
    }
  }
  // The optimize answer's metadata goes back with the feedback, as is, for off-policy evaluation.
  const spec = { garment_type: 'dress' };
  const answer = await client.optimizePrompt({ user_id: 'user_123', vlt_spec: spec });
  await client.submitFeedback({
    user_id: 'user_123',
    generation_id: 'g1',
    asset_id: 'a1',
    feedback_type: 'like',
    prompt_used: answer.prompt,
    vlt_spec: spec,
    decision: answer.metadata,
  });
  const names: string[] = ROUTES.map((r) => r.name);
  void [version, names];

  // @ts-expect-error timeoutMs is a number
  new MLServiceClient({ timeoutMs: '10' });
  // @ts-expect-error a user id is a string
  await client.getStyleProfile(42);
  // @ts-expect-error no such endpoint
  await client.deleteEverything();
}
