// Debian's python3-boto3 (1.26.x, botocore 1.29.x: the SQS Query protocol) run by
// /usr/bin/python3 against a real `berth serve`. The Python script does the calls and
// prints what it saw as JSON; the assertions are here. A `before-send` hook records the
// request bodies to prove they are Query forms (`Action=...`), not JSON.
//
// /usr/bin/python3 explicitly (not a pyenv shim, whose boto3 would be a JSON-protocol one).
// When boto3 is missing the test fails and says to run scripts/test.sh.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requireFile, runCommand, startBerth, type BerthProcess } from './harness/server.js';
import { accountId, md5OfMessageAttributes, queueArn } from './harness/sqs.js';

const pythonPath = '/usr/bin/python3';
let berth: BerthProcess;

before(async () => {
  requireFile(pythonPath, 'Debian python3');
  const probe = await runCommand(pythonPath, ['-c', 'import boto3, botocore; print(boto3.__version__, botocore.__version__)'], { timeoutMs: 30_000 });
  assert.equal(probe.code, 0, `python3-boto3 is missing for /usr/bin/python3 (${probe.stderr.trim().split('\n').at(-1)}). Run \`bash scripts/test.sh\` as root: it installs the Debian packages the tests need.`);
  berth = await startBerth();
});

after(async () => {
  await berth?.stop();
});

const script = String.raw`
import base64, hashlib, json, sys
import boto3, botocore
from botocore.config import Config

endpoint = sys.argv[1]
bodies = []
def record(request, **kwargs):
    body = request.body
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    def text(value):
        return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)
    bodies.append({'body': body or '', 'headers': {text(k).lower(): text(v) for k, v in request.headers.items()}})

sqs = boto3.client('sqs', endpoint_url=endpoint, region_name='us-east-1',
                   aws_access_key_id='AKIDBERTHTEST', aws_secret_access_key='berth-test-secret',
                   config=Config(retries={'max_attempts': 1}))
sqs.meta.events.register('before-send.sqs.*', record)
out = {'versions': [boto3.__version__, botocore.__version__]}

def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return {'code': error.response['Error']['Code'], 'status': error.response['ResponseMetadata']['HTTPStatusCode']}
    return {'code': None}

url = sqs.create_queue(QueueName='boto-std', Attributes={'VisibilityTimeout': '35'}, tags={'lang': 'python'})['QueueUrl']
out['url'] = url
out['get_url'] = sqs.get_queue_url(QueueName='boto-std')['QueueUrl']
out['list'] = sqs.list_queues(QueueNamePrefix='boto-')['QueueUrls']
out['attributes'] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes']
sqs.set_queue_attributes(QueueUrl=url, Attributes={'DelaySeconds': '0', 'MaximumMessageSize': '2048'})
out['attributes_after'] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['MaximumMessageSize'])['Attributes']
out['tags'] = sqs.list_queue_tags(QueueUrl=url).get('Tags')

attributes = {
    'text': {'DataType': 'String', 'StringValue': 'grüße ✓'},
    'number': {'DataType': 'Number', 'StringValue': '3.14'},
    'blob': {'DataType': 'Binary', 'BinaryValue': bytes([0, 128, 255])},
    'custom': {'DataType': 'Binary.png', 'BinaryValue': b'PNG'},
}
body = 'boto3 body & <xml> ✓'
sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
out['sent'] = {k: sent.get(k) for k in ('MessageId', 'MD5OfMessageBody', 'MD5OfMessageAttributes')}
out['body_md5'] = hashlib.md5(body.encode('utf-8')).hexdigest()
received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10,
                               MessageAttributeNames=['All'], AttributeNames=['All']).get('Messages', [])
out['received'] = [{
    'MessageId': m['MessageId'], 'Body': m['Body'], 'MD5OfBody': m['MD5OfBody'],
    'MD5OfMessageAttributes': m.get('MD5OfMessageAttributes'),
    'Attributes': m.get('Attributes'),
    'MessageAttributes': {k: {'DataType': v['DataType'], 'StringValue': v.get('StringValue'),
                              'BinaryValue': base64.b64encode(v['BinaryValue']).decode() if 'BinaryValue' in v else None}
                          for k, v in m.get('MessageAttributes', {}).items()},
} for m in received]
for m in received:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m['ReceiptHandle'])

batch = sqs.send_message_batch(QueueUrl=url, Entries=[
    {'Id': 'one', 'MessageBody': 'b1'}, {'Id': 'two', 'MessageBody': 'b2'}, {'Id': 'bad', 'MessageBody': 'forbidden \x01 character'}])
out['batch'] = {'ok': sorted(e['Id'] for e in batch.get('Successful', [])),
                'failed': [{'Id': e['Id'], 'SenderFault': e['SenderFault'], 'Code': e['Code']} for e in batch.get('Failed', [])]}
seen = []
for _ in range(10):
    if len(seen) >= 2:
        break
    for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get('Messages', []):
        seen.append(m)
if seen:
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{'Id': 'd%d' % i, 'ReceiptHandle': m['ReceiptHandle']} for i, m in enumerate(seen)])
    out['batch_deleted'] = len(deleted.get('Successful', []))
out['batch_bodies'] = sorted(m['Body'] for m in seen)

fifo = sqs.create_queue(QueueName='boto-order.fifo', Attributes={'FifoQueue': 'true', 'ContentBasedDeduplication': 'true'})['QueueUrl']
ids = [sqs.send_message(QueueUrl=fifo, MessageBody=b, MessageGroupId='g')['MessageId'] for b in ['f1', 'f2', 'f1']]
out['fifo_ids'] = ids
order = []
for _ in range(10):
    if len(order) >= 2:
        break
    for m in sqs.receive_message(QueueUrl=fifo, WaitTimeSeconds=2, MaxNumberOfMessages=10, AttributeNames=['All']).get('Messages', []):
        order.append({'Body': m['Body'], 'Group': m['Attributes'].get('MessageGroupId'), 'Seq': m['Attributes'].get('SequenceNumber')})
        sqs.delete_message(QueueUrl=fifo, ReceiptHandle=m['ReceiptHandle'])
out['fifo_order'] = order

out['errors'] = {
    'no_queue': error_code(lambda: sqs.get_queue_url(QueueName='boto-no-such-queue')),
    'exists': error_code(lambda: sqs.create_queue(QueueName='boto-std', Attributes={'VisibilityTimeout': '36'})),
    'bad_attribute': error_code(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['NoSuchAttribute'])),
    'too_many': error_code(lambda: sqs.send_message_batch(QueueUrl=url, Entries=[{'Id': str(i), 'MessageBody': 'm'} for i in range(11)])),
    'empty_batch': error_code(lambda: sqs.delete_message_batch(QueueUrl=url, Entries=[])),
}
sqs.delete_queue(QueueUrl=fifo)
out['after_delete'] = error_code(lambda: sqs.get_queue_url(QueueName='boto-order.fifo'))

out['requests'] = [{'body': b['body'][:200], 'target': b['headers'].get('x-amz-target'), 'type': b['headers'].get('content-type')} for b in bodies]
print(json.dumps(out))
`;

test('boto3 (Query protocol): queues, attributes, messages with attributes, batch, FIFO, errors', async () => {
  const result = await runCommand(pythonPath, ['-', berth.url], { input: script, timeoutMs: 120_000, env: { AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' } });
  assert.equal(result.code, 0, `the boto3 script failed (exit ${result.code}${result.timedOut ? ', timed out' : ''}):\n${result.stderr}`);
  const out = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}');

  assert.match(out.versions[0], /^1\.26\./, 'Debian bookworm boto3 1.26.x');
  // Every request is a Query form, none is JSON.
  assert.ok(out.requests.length > 10);
  for (const request of out.requests) {
    assert.match(request.body, /(^|&)Action=\w+/, `Query request body: ${request.body}`);
    assert.ok(request.target == null, `no X-Amz-Target header, got ${request.target}`);
    assert.match(request.type ?? '', /application\/x-www-form-urlencoded/);
  }

  const url = `${berth.url}/${accountId}/boto-std`;
  assert.equal(out.url, url);
  assert.equal(out.get_url, url);
  assert.deepEqual(out.list, [url]);
  assert.equal(out.attributes.VisibilityTimeout, '35');
  assert.equal(out.attributes.QueueArn, queueArn('boto-std'));
  assert.deepEqual(out.attributes_after, { MaximumMessageSize: '2048' });
  assert.deepEqual(out.tags, { lang: 'python' });

  assert.equal(out.sent.MD5OfMessageBody, out.body_md5);
  const expectedMd5 = md5OfMessageAttributes({
    text: { DataType: 'String', StringValue: 'grüße ✓' },
    number: { DataType: 'Number', StringValue: '3.14' },
    blob: { DataType: 'Binary', BinaryValue: Buffer.from([0, 128, 255]) },
    custom: { DataType: 'Binary.png', BinaryValue: Buffer.from('PNG') },
  });
  assert.equal(out.sent.MD5OfMessageAttributes, expectedMd5);
  assert.equal(out.received.length, 1);
  const message = out.received[0];
  assert.equal(message.MessageId, out.sent.MessageId);
  assert.equal(message.Body, 'boto3 body & <xml> ✓');
  assert.equal(message.MD5OfBody, out.body_md5);
  assert.equal(message.MD5OfMessageAttributes, expectedMd5);
  assert.equal(message.MessageAttributes.text.StringValue, 'grüße ✓');
  assert.equal(message.MessageAttributes.number.StringValue, '3.14');
  assert.equal(message.MessageAttributes.blob.BinaryValue, Buffer.from([0, 128, 255]).toString('base64'));
  assert.equal(message.MessageAttributes.custom.DataType, 'Binary.png');
  assert.equal(message.Attributes.ApproximateReceiveCount, '1');

  // The entry with a character SQS does not allow fails alone.
  assert.deepEqual(out.batch.ok, ['one', 'two']);
  assert.equal(out.batch.failed.length, 1);
  assert.equal(out.batch.failed[0].Id, 'bad');
  assert.equal(out.batch.failed[0].SenderFault, true);
  assert.deepEqual(out.batch_bodies, ['b1', 'b2']);
  assert.equal(out.batch_deleted, 2);

  assert.equal(out.fifo_ids[2], out.fifo_ids[0], 'content-based dedup returns the first MessageId');
  assert.notEqual(out.fifo_ids[1], out.fifo_ids[0]);
  assert.deepEqual(out.fifo_order.map((entry: { Body: string }) => entry.Body), ['f1', 'f2']);
  assert.ok(out.fifo_order.every((entry: { Group: string; Seq: string }) => entry.Group === 'g' && /^\d+$/.test(entry.Seq)));
  assert.ok(BigInt(out.fifo_order[0].Seq) < BigInt(out.fifo_order[1].Seq), 'sequence numbers increase');

  assert.deepEqual(out.errors.no_queue, { code: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 });
  assert.deepEqual(out.errors.exists, { code: 'QueueAlreadyExists', status: 400 });
  assert.equal(out.errors.bad_attribute.code, 'InvalidAttributeName');
  assert.equal(out.errors.too_many.code, 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest');
  assert.equal(out.errors.empty_batch.code, 'AWS.SimpleQueueService.EmptyBatchRequest');
  assert.equal(out.after_delete.code, 'AWS.SimpleQueueService.NonExistentQueue');
});
