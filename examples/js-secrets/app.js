// The JavaScript twin of the `secrets` and `credentials` examples, for the tests (not a model
// of what a function should echo).
//
// `?name=N` resolves N (`&scope=S` reads one scope, `&field=F` one field, `&reveal=1` answers
// the value too); `?value=N` answers N's value alone (`secrets.value`); `?list=1` lists the
// names this package may read; `?url=U&credential=C` sends a GET to U with the credential C
// attached by the host; anything else echoes the request. Answers are JSON; errors are `{"error": code, "message": ...}` with status 200.

import { handler, secrets, Outgoing, Response, SecretsError } from './edgeward.js'; // sdk/js/edgeward.js, copied beside it to build

function route(req) {
  const valueOf = req.queryParam('value');
  if (valueOf !== undefined) {
    return Response.json(200, { lang: 'js', value: secrets.value(valueOf) ?? null });
  }
  const name = req.queryParam('name');
  if (name !== undefined) {
    const scope = req.queryParam('scope');
    const secret = scope ? secrets.getFrom(scope, name) : secrets.get(name);
    if (!secret) return Response.json(200, { lang: 'js', found: false });
    const answer = {
      lang: 'js',
      found: true,
      name: secret.name,
      scope: secret.scope,
      version: secret.version,
      object: secret.isObject(),
    };
    const field = req.queryParam('field');
    if (field !== undefined) answer.field = secret.field(field) ?? null;
    if (req.queryParam('reveal')) answer.value = secret.reveal();
    return Response.json(200, answer);
  }
  if (req.queryParam('list')) return Response.json(200, { names: secrets.list() });
  const url = req.queryParam('url');
  if (url !== undefined) {
    const out = Outgoing.get(url);
    const credential = req.queryParam('credential');
    if (credential !== undefined) out.withCredential(credential);
    try {
      const got = out.send();
      return Response.json(200, { status: got.status, body: got.text() });
    } catch (e) {
      if (e instanceof SecretsError) throw e;
      return Response.json(200, { error: e.message });
    }
  }
  return Response.json(200, {
    lang: 'js',
    method: req.method,
    path: req.path,
    query: req.query ?? null,
    header: req.header('x-probe') ?? null,
    body: req.text(),
  }).withHeader('x-lang', 'js');
}

export const incomingHandler = handler((req) => {
  try {
    return route(req);
  } catch (e) {
    if (!(e instanceof SecretsError)) throw e;
    return Response.json(200, { error: e.code, message: e.message.slice(e.code.length + 2) });
  }
});
