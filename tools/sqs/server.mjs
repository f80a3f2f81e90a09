// The local SQS emulator of the chat-export stack: local-aws-sqs (pinned in
// package-lock.json), in memory, on 127.0.0.1 only. scripts/stack.sh copies this file
// next to the installed node_modules (.tools/sqs/) and runs it:
//   node .tools/sqs/server.mjs [PORT]        (PORT defaults to $SQS_PORT, else 19300)
// Queue URLs are http://127.0.0.1:PORT/123456789012/NAME; the emulator finds a queue by
// the last path segment of the QueueUrl it is sent, whatever the host, port or account.
// Queues live in memory: they are gone when the emulator stops (`exportctl setup`
// creates them again).
import { createRequire } from "node:module";
import { createSqsServer } from "local-aws-sqs";

const port = Number(process.argv[2] ?? process.env.SQS_PORT ?? 19300);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`sqs: invalid port ${process.argv[2] ?? process.env.SQS_PORT}`);
  process.exit(2);
}

const server = await createSqsServer({
  port,
  hostname: "127.0.0.1",
  // The queue ARN's region (arn:aws:sqs:REGION:123456789012:NAME), like the SDK's.
  region: process.env.AWS_REGION || "us-east-1",
  // Tests may delete a queue and create it again at once; AWS makes you wait 60 s.
  emulateQueueCreationLifecycle: false,
});

// Nothing to flush: stop at once, whatever connections SDK clients keep alive.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.closeAllConnections();
    process.exit(0);
  });
}
const { version } = createRequire(import.meta.url)("local-aws-sqs/package.json");
console.log(`sqs (local-aws-sqs ${version}) listening on http://127.0.0.1:${port}`);
