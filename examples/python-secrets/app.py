"""The Python twin of the `secrets` and `credentials` examples, for the tests (not a model of
what a function should echo).

`?name=N` resolves N (`&scope=S` reads one scope, `&field=F` one field, `&reveal=1` answers
the value too); `?value=N` answers N's value alone (`secrets.value`); `?list=1` lists the
names this package may read; `?url=U&credential=C` sends a GET to U with the credential C
attached by the host; anything else echoes the request.
Answers are JSON; errors are `{"error": code, "message": ...}` with status 200.
"""

import edgeward
from edgeward import Outgoing, Response, SecretsError


def handle(req):
    try:
        if (name := req.query_param("value")) is not None:
            return Response.json(200, {"lang": "python", "value": edgeward.secrets.value(name)})
        if (name := req.query_param("name")) is not None:
            scope = req.query_param("scope")
            secret = edgeward.secrets.get_from(scope, name) if scope else edgeward.secrets.get(name)
            if secret is None:
                return Response.json(200, {"lang": "python", "found": False})
            answer = {
                "lang": "python",
                "found": True,
                "name": secret.name,
                "scope": secret.scope,
                "version": secret.version,
                "object": secret.is_object(),
            }
            if (field := req.query_param("field")) is not None:
                answer["field"] = secret.field(field)
            if req.query_param("reveal"):
                answer["value"] = secret.reveal()
            return Response.json(200, answer)
        if req.query_param("list"):
            return Response.json(200, {"names": edgeward.secrets.list()})
        if (url := req.query_param("url")) is not None:
            out = Outgoing.get(url)
            if (credential := req.query_param("credential")) is not None:
                out.with_credential(credential)
            try:
                got = out.send()
            except OSError as err:
                return Response.json(200, {"error": str(err)})
            return Response.json(200, {"status": got.status, "body": got.text()})
    except SecretsError as err:
        return Response.json(200, {"error": err.code, "message": err.message})
    return Response.json(
        200,
        {
            "lang": "python",
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "header": req.header("x-probe"),
            "body": req.text(),
        },
    ).with_header("x-lang", "python")


IncomingHandler = edgeward.handler(handle)
