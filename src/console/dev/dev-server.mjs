// Console development server: the real console handler (dist/src/server/console-routes.js)
// over an in-memory QueueService, with a little synthetic traffic so the charts move.
//   npm run build && node src/console/dev/dev-server.mjs [--port 8089] [--auth KEY:SECRET] [--quiet]
// Then open http://127.0.0.1:8089/console/. Rebuild the SPA with
//   npx vite build --config src/console/vite.config.ts
// and reload the page. Prints "listening <url>" once it accepts connections.
// @ts-check
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { MemoryQueueService } from './memory-queue-service.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const { createConsoleHandler, parseConsoleCredentials } = await import(path.join(repoRoot, 'dist/src/server/console-routes.js'));
const { BerthMetrics } = await import(path.join(repoRoot, 'dist/src/server/metrics.js'));
const { BerthError } = await import(path.join(repoRoot, 'dist/src/protocol/errors.js'));

const argument = (name, fallback) => {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : process.argv[index + 1];
};
const port = Number(argument('--port', '8089'));
const auth = argument('--auth', undefined);
const traffic = !process.argv.includes('--quiet');

const service = new MemoryQueueService({ makeError: (code, message) => new BerthError(code, message) });
const metrics = new BerthMetrics({ collectDefault: true });
const handler = createConsoleHandler({
  service,
  metrics,
  ...(auth === undefined
    ? {}
    : {
        authorize: (request) => {
          const credentials = parseConsoleCredentials(request);
          return credentials !== undefined && `${credentials.accessKeyId}:${credentials.secretAccessKey}` === auth;
        },
      }),
});

if (traffic) {
  await service.createQueue('orders', {}, { team: 'shop' });
  await service.createQueue('orders-dlq', {}, {});
  await service.setQueueAttributes('orders', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: `arn:aws:sqs:${service.region}:${service.accountId}:orders-dlq`, maxReceiveCount: 5 }) });
  await service.createQueue('payments.fifo', { FifoQueue: 'true' }, {});
  setInterval(async () => {
    const started = performance.now();
    const sent = 1 + Math.floor(Math.random() * 8);
    await service.send('orders', Array.from({ length: sent }, (_, index) => ({ body: JSON.stringify({ order: index, at: Date.now() }), attributes: {}, systemAttributes: {}, senderId: 'dev' })));
    metrics.recordAction('SendMessageBatch', 'orders', undefined, performance.now() - started + Math.random() * 3);
    metrics.recordMessages('orders', 'sent', sent);
    const received = await service.receive('orders', { maxMessages: 6, waitTimeSeconds: 0 });
    metrics.recordAction('ReceiveMessage', 'orders', undefined, Math.random() * 6);
    metrics.recordMessages('orders', 'received', received.length);
    await service.deleteMessages('orders', received.map((message) => message.receiptHandle));
    metrics.recordAction('DeleteMessageBatch', 'orders', Math.random() < 0.05 ? 'ReceiptHandleIsInvalid' : undefined, Math.random() * 4);
    metrics.recordMessages('orders', 'deleted', received.length);
  }, 500).unref();
}

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', async () => {
    const started = performance.now();
    const result = await handler({ method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers, body: Buffer.concat(chunks) });
    if (result === undefined) {
      response.writeHead(302, { location: '/console/' }).end();
      return;
    }
    if ((request.url ?? '').startsWith('/console/api/')) metrics.recordAction('Console', undefined, result.status >= 400 ? String(result.status) : undefined, performance.now() - started);
    response.writeHead(result.status, result.headers).end(result.body);
  });
});
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actualPort = typeof address === 'object' && address !== null ? address.port : port;
  console.log(`listening http://127.0.0.1:${actualPort}/console/`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    metrics.close();
    server.close();
    server.closeAllConnections();
  });
}
