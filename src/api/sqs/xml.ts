// XML output of the Query protocol. Responses are built from the same JSON-shaped
// output objects the JSON protocol serialises, so both protocols return the same data.
//
// Shape rules (the SQS Query wire model, all lists flattened):
//   an array under key K        -> one <E>..</E> per item, E = the list's element name
//   Attributes / Tags maps       -> <Attribute><Name>k</Name><Value>v</Value></Attribute>, <Tag><Key>..</Key><Value>..</Value></Tag>
//   MessageAttributes map        -> <MessageAttribute><Name>k</Name><Value>{StringValue,BinaryValue,DataType}</Value></MessageAttribute>
//   a scalar under key K         -> <K>escaped text</K>
//   an object under key K        -> <K>..members..</K>

export const xmlNamespace = 'http://queue.amazonaws.com/doc/2012-11-05/';

// Characters XML 1.0 cannot carry at all (even escaped): C0 controls except tab, LF, CR;
// lone surrogates; U+FFFE and U+FFFF. They can reach us only in echoed input (error
// messages), since message bodies are validated, and are replaced by U+FFFD.
const invalidXmlCharacters = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const escapedCharacters = /[&<>"'\r]/g;
const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#xD;' };

/** Escapes text for element content; CR is kept as a reference so parsers do not normalise it away. */
export function escapeXml(text: string): string {
  return text.replace(invalidXmlCharacters, '\uFFFD').replace(escapedCharacters, (character) => escapes[character]!);
}

/** Names of list elements that do not follow a single global rule (batch results differ per action). */
export type ListElementNames = Record<string, string>;

const defaultListElementNames: ListElementNames = {
  QueueUrls: 'QueueUrl',
  queueUrls: 'QueueUrl',
  Messages: 'Message',
  Failed: 'BatchResultErrorEntry',
  Results: 'ListMessageMoveTasksResultEntry',
};

function serializeValue(key: string, value: unknown, listNames: ListElementNames, out: string[]): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    const elementName = listNames[key] ?? defaultListElementNames[key] ?? key;
    for (const item of value) serializeValue(elementName, item, listNames, out);
    return;
  }
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (key === 'Attributes' || key === 'Tags' || key === 'MessageAttributes') {
      const entryName = key === 'Attributes' ? 'Attribute' : key === 'Tags' ? 'Tag' : 'MessageAttribute';
      const keyName = key === 'Tags' ? 'Key' : 'Name';
      for (const name of Object.keys(record)) {
        out.push('<', entryName, '><', keyName, '>', escapeXml(name), '</', keyName, '>');
        const entryValue = record[name];
        if (typeof entryValue === 'object' && entryValue !== null) {
          out.push('<Value>');
          serializeMembers(entryValue as Record<string, unknown>, listNames, out);
          out.push('</Value>');
        } else {
          out.push('<Value>', escapeXml(String(entryValue)), '</Value>');
        }
        out.push('</', entryName, '>');
      }
      return;
    }
    out.push('<', key, '>');
    serializeMembers(record, listNames, out);
    out.push('</', key, '>');
    return;
  }
  out.push('<', key, '>', escapeXml(String(value)), '</', key, '>');
}

function serializeMembers(record: Record<string, unknown>, listNames: ListElementNames, out: string[]): void {
  for (const key of Object.keys(record)) serializeValue(key, record[key], listNames, out);
}

/** `<ActionResponse xmlns><ActionResult>..</ActionResult><ResponseMetadata><RequestId>..` */
export function xmlResponse(action: string, output: Record<string, unknown> | undefined, requestId: string, listNames: ListElementNames = {}): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n<', action, 'Response xmlns="', xmlNamespace, '">'];
  if (output !== undefined) {
    out.push('<', action, 'Result>');
    serializeMembers(output, listNames, out);
    out.push('</', action, 'Result>');
  }
  out.push('<ResponseMetadata><RequestId>', escapeXml(requestId), '</RequestId></ResponseMetadata></', action, 'Response>');
  return out.join('');
}

export function xmlErrorResponse(fault: string, code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="' + xmlNamespace + '"><Error><Type>' + escapeXml(fault) +
    '</Type><Code>' + escapeXml(code) + '</Code><Message>' + escapeXml(message) + '</Message><Detail/></Error><RequestId>' +
    escapeXml(requestId) + '</RequestId></ErrorResponse>'
  );
}
